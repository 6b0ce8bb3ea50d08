"""The link's handshake with the PC (docs/protocol.md, "Trust"): our hello and the proofs of
the pairing key both ways (pairing itself is in pairing.py). Loaded for each connection with
trust.py; both leave the heap once the PC is proven.

`link` is the link (link.py), or update mode's stand-in for it (updating.py): its `cfg`,
`pairing()`, `needle_parts()`, `_send`, `_welcome` and `_failed`, and for pairing its
`device` and `_update`.
"""

import asyncio
import sys

import hal
import protocol
import slots
import trust
from micropython import const

# the version when run from sources; a built bundle's manifest says it (slots.running)
_FW_VERSION = const("0.1.0")
_PROTO = const(2)
_HANDSHAKE_S = const(10)  # the PC's hello must come this soon after ours


def log(text):
    """One line for the serial console (the simulator's stdout)."""
    print(text)


async def prove(link, ws):
    """Send our hello and take the PC through the handshake: True once it proved our key and
    welcomed our proof. Until then nothing is written and no needle moves; a PC without the
    key costs one failed handshake. An unpaired meter (or one asked to pair) pairs instead."""
    try:
        nonce = trust.nonce()
        await link._send(ws, hello(link, nonce))
        return await _handshake(link, ws, nonce)
    finally:
        # what the handshake brought in besides itself (the key's code, the decoding of the
        # PC's hello and pair that protocol.py loads, pairing); its caller drops this module
        for name in ("trust", "hellomsg", "pairing"):
            sys.modules.pop(name, None)


async def _handshake(link, ws, nonce):
    msg = await receive(ws, _HANDSHAKE_S)
    if msg is None or msg["type"] != "hello":
        if msg is not None and msg["type"] == "error":
            log("link: the PC says: " + msg["reason"])
        elif msg is not None:  # a PC that skips the handshake is not ours
            log("link: refused: %r came before the PC's hello" % msg["type"])
        await ws.close(1008)
        return False
    key, pc, me = link.cfg["key"], link.cfg["pc"], hal.unique_id()
    if not key or link.pairing():
        link._failed = False
        import pairing  # rare: its code leaves the heap with the handshake's

        await pairing.pair(link, ws)
        return False
    expected = trust.pc_proof(key, nonce, msg["nonce"], me, pc)
    if msg["pc"] != pc or not trust.equal(msg.get("proof", ""), expected):
        log("link: %r is not our PC (it did not prove our key)" % msg["server"])
        await ws.close(1008)
        return False
    mac = trust.device_proof(key, nonce, msg["nonce"], me, pc)
    await link._send(ws, {"type": "proof", "mac": mac})
    # proven only once the PC took our proof: a version whose proof is wrong must not
    # count as linked (that would confirm it, and it could never roll back)
    msg = await receive(ws, _HANDSHAKE_S)
    if msg is None or msg["type"] != "welcome":
        if msg is not None and msg["type"] == "error":
            log("link: the PC says: " + msg["reason"])
        return False
    link._welcome(msg)
    return True


async def receive(ws, timeout, waiting=False):
    """The next message from the PC: None when the link should end; False on a timeout
    while `waiting` (pairing waits for a press), else the end too."""
    try:
        text = await ws.recv(timeout)
    except asyncio.TimeoutError:
        if waiting:
            return False
        log("link: no answer from the PC")
        return None
    try:
        return protocol.decode(text, "server")
    except protocol.ProtocolError as exc:
        log("link: bad message before the key was proven: %s" % exc)
        return None


def hello(link, nonce):
    """Our hello (docs/protocol.md): what this meter is, and the nonce the PC must prove."""
    sim = hal.output_kind() == "sim"
    needles = []
    for output, points in link.needle_parts():
        needles.append({"output": "sim" if sim else output.kind, "calibration": points})
    ours = {
        "type": "hello",
        "proto": _PROTO,
        "id": hal.unique_id(),
        "fw": slots.running or _FW_VERSION,
        "board": hal.board(),
        "nonce": nonce,
        "needles": needles,
    }
    if link.cfg["key"] and not link.pairing():
        ours["pc"] = link.cfg["pc"]
    if link.cfg.get("name"):  # the meter's own name, shown by the PC
        ours["name"] = link.cfg["name"]
    return ours
