"""Pairing (docs/protocol.md, "Trust"): an unpaired meter, or one asked to pair again, takes
a PC's key within a minute of a button press. Loaded by the handshake only when it pairs, and
dropped with it.
"""

import hal
import handshake
from micropython import const

_READ_TIMEOUT_S = const(30)  # link.py's: only silence reveals a dead Wi-Fi link
_WAIT_S = const(0.5)  # how long to wait for a message before looking at the button again


async def pair(link, ws):
    """Unpaired, or asked to pair again: send `pair` once the button asks for it, and take
    the PC's key only within a minute of that press."""
    asked = False
    heard = hal.ticks_ms()
    while hal.ticks_diff(hal.ticks_ms(), heard) < _READ_TIMEOUT_S * 1000:
        link.device.beat("link")
        if link.pairing() and not asked:
            await link._send(ws, {"type": "pair"})
            asked = True
        msg = await handshake.receive(ws, _WAIT_S, True)
        if msg is False:
            continue  # nothing yet
        if msg is None:
            return
        heard = hal.ticks_ms()
        if msg["type"] == "pair" and asked and link.pairing():
            handshake.log("link: paired with the PC %r" % msg["pc"])
            link.pair_pressed_at = None
            link.cached = None  # its address is learnt again, by its id
            link.refused = []  # answers refused under the old key deserve a new try
            link._update(key=msg["key"], pc=msg["pc"])
            link._flush(True)
            await ws.close(1000)
            return
        if msg["type"] == "error":
            handshake.log("link: the PC says: " + msg["reason"])
            return
