"""The PC's side of the handshake (docs/protocol.md, "Trust"): the meter proves the key, or
pairs by its button. Until the proof, the PC sends only hello, pair and error, and saves
nothing but a key the user's button press asked for.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from sysboy_tray import protocol
from sysboy_tray.errors import ConfigError, ProtocolError
from sysboy_tray.pairing import Trust

log = logging.getLogger(__name__)

PROOF_TIMEOUT_S = 5.0
CLOSE_POLICY = 1008
ALREADY_PAIRED = (
    "this PC already holds a key for this meter: forget the meter in the tray first, "
    "or pair it over USB"
)


async def prove(
    ws: ServerConnection,
    hello: protocol.DeviceHello,
    trust: Trust,
    server_name: str,
    changed: Callable[[], None],
) -> bool:
    """Run the handshake after the meter's hello; True once the meter proved the key.

    When it returns False the connection is closed or closing: the meter failed, or it
    paired and will link again with its new key.
    """
    key = trust.pairs.key_for(hello.id)
    nonce = secrets.token_hex(16)
    proof = None
    if key is not None:
        proof = protocol.pc_proof(key, hello.nonce, nonce, hello.id, trust.pc_id)
    answer = protocol.ServerHello(server_name, trust.pc_id, nonce, key is not None, proof)
    try:
        await ws.send(protocol.encode(answer))
        if key is None:
            await _pair(ws, hello, trust, changed)
            return False
        message = await _next(ws, PROOF_TIMEOUT_S)
        if message is None:
            return False
        expected = protocol.device_proof(key, hello.nonce, nonce, hello.id, trust.pc_id)
        if isinstance(message, protocol.Proof) and protocol.same_proof(message.mac, expected):
            return True
        if isinstance(message, protocol.PairRequest):
            await _refuse(ws, ALREADY_PAIRED)
        else:
            log.warning("meter %r at %s did not prove its key", hello.id, _peer(ws))
            await _refuse(ws, "wrong key: pair this meter again")
    except ConnectionClosed:
        pass
    return False


async def _pair(
    ws: ServerConnection,
    hello: protocol.DeviceHello,
    trust: Trust,
    changed: Callable[[], None],
) -> None:
    """An unpaired meter: show it as new, and pair it if its button is pressed in time."""
    if hello.pc is not None:
        # paired with another PC, and not asking to re-pair (that hello carries no `pc`)
        await _refuse(ws, "this PC is not paired with this meter")
        return
    new = trust.new_meters
    new.seen(hello.id, hello.name or hello.id, _peer(ws))
    changed()
    log.info("new meter %r at %s: press its button to pair", hello.id, _peer(ws))
    while new.is_open(hello.id):
        message = await _next(ws, new.window_s)
        if message is None:
            return
        if isinstance(message, protocol.Error):
            log.info("meter %r says: %r", hello.id, message.reason)
            continue
        if not isinstance(message, protocol.PairRequest):
            await _refuse(ws, "prove the pairing key first")
            return
        if trust.pairs.key_for(hello.id) is not None:
            await _refuse(ws, ALREADY_PAIRED)
            return
        if not new.is_open(hello.id):
            break
        try:
            # file I/O stays off the loop; the key is on disk before it leaves the PC
            key = await asyncio.to_thread(trust.pairs.pair, hello.id)
        except (ConfigError, OSError) as exc:
            await _refuse(ws, f"not paired: {exc}"[:200])
            return
        new.done(hello.id)
        changed()
        await ws.send(protocol.encode(protocol.PairGrant(key, trust.pc_id)))
        await ws.close(1000, "paired")
        return
    await ws.close(1000, "not paired: no button press within a minute")


async def _next(ws: ServerConnection, timeout: float) -> protocol.Message | None:
    """The meter's next message, or None (and the connection closed) when there is none."""
    try:
        data = await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        await ws.close(CLOSE_POLICY, "no answer to the handshake in time")
        return None
    try:
        if isinstance(data, bytes):
            raise ProtocolError("binary frames are not used; send JSON text")
        return protocol.decode(data, "device")
    except ProtocolError as exc:
        await _refuse(ws, str(exc))
        return None


async def _refuse(ws: ServerConnection, reason: str) -> None:
    await ws.send(protocol.encode(protocol.Error(reason)))
    await ws.close(CLOSE_POLICY, reason[:120])


def _peer(ws: ServerConnection) -> str:
    peer = ws.remote_address
    return str(peer[0]) if peer else "?"
