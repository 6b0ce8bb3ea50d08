"""The link's handshake with the PC (docs/protocol.md, "Trust"): our hello, the proofs of the
pairing key both ways, and pairing itself. Loaded for each connection with trust.py; both
leave the heap once the PC is proven.

`link` is the link (link.py), or update mode's stand-in for it (updating.py): its `cfg`,
`pairing()`, `needle_parts()`, `_send`, `_welcome` and `_failed`, and for pairing its
`device` and `_update`.
"""

import asyncio

import hal
import protocol
import slots
import trust
from micropython import const

# the version when run from sources; a built bundle's manifest says it (slots.running)
_FW_VERSION = const("0.1.0")
_PROTO = const(2)
_HANDSHAKE_S = const(10)  # the PC's hello must come this soon after ours
_READ_TIMEOUT_S = const(30)  # link.py's: only silence reveals a dead Wi-Fi link
_WAIT_S = const(0.5)  # while pairing: how long to wait for a message before looking again


def log(text):
    """One line for the serial console (the simulator's stdout)."""
    print(text)


async def prove(link, ws):
    """Send our hello and take the PC through the handshake: True once it proved our key and
    welcomed our proof. Until then nothing is written and no needle moves; a PC without the
    key costs one failed handshake. An unpaired meter (or one asked to pair) pairs instead."""
    nonce = trust.nonce()
    await link._send(ws, hello(link, nonce))
    return await _handshake(link, ws, nonce)


async def _handshake(link, ws, nonce):
    msg = await _recv(ws, _HANDSHAKE_S)
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
        await _pair(link, ws)
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
    msg = await _recv(ws, _HANDSHAKE_S)
    if msg is None or msg["type"] != "welcome":
        if msg is not None and msg["type"] == "error":
            log("link: the PC says: " + msg["reason"])
        return False
    link._welcome(msg)
    return True


async def _pair(link, ws):
    """Unpaired, or asked to pair again: send `pair` once the button asks for it, and take
    the PC's key only within a minute of that press."""
    asked = False
    heard = hal.ticks_ms()
    while hal.ticks_diff(hal.ticks_ms(), heard) < _READ_TIMEOUT_S * 1000:
        link.device.beat("link")
        if link.pairing() and not asked:
            await link._send(ws, {"type": "pair"})
            asked = True
        msg = await _recv(ws, _WAIT_S, True)
        if msg is False:
            continue  # nothing yet
        if msg is None:
            return
        heard = hal.ticks_ms()
        if msg["type"] == "pair" and asked and link.pairing():
            log("link: paired with the PC %r" % msg["pc"])
            link.pair_pressed_at = None
            link.cached = None  # its address is learnt again, by its id
            link.refused = []  # answers refused under the old key deserve a new try
            link._update(key=msg["key"], pc=msg["pc"])
            link._flush(True)
            await ws.close(1000)
            return
        if msg["type"] == "error":
            log("link: the PC says: " + msg["reason"])
            return


async def _recv(ws, timeout, waiting=False):
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
