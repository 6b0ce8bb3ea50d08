"""Decoding what a device sends, for the PC's side of the parity check (never on the device)."""

import hellomsg
import updatemsg
from micropython import const

OUTPUTS = ("dac", "pwm", "sim")
_MAX_NEEDLES = const(4)  # protocol.py's
_HEX = const("0123456789abcdef")


def _needles(value, p):
    if not isinstance(value, list) or not 1 <= len(value) <= _MAX_NEEDLES:
        p._refuse("needles", "must be a list of 1 to 4 needles")
    needles = []
    for item in value:
        if not isinstance(item, dict):
            p._refuse("needles", "must hold objects")
        output = p._string(item, "output", 8)
        if output not in OUTPUTS:
            p._refuse("output", "must be one of " + ", ".join(OUTPUTS))
        needles.append({"output": output, "calibration": p.check_points(item.get("calibration"))})
    return needles


def decode(kind, obj, p):
    """The normal form of a reserved message `kind` sent by a device, as a dict."""
    out = {"type": kind}
    if kind == "hello":
        out["proto"] = hellomsg.proto(obj, p, "firmware too old to pair: update it over USB")
        out["id"] = hellomsg.identity(obj, "id", p)
        out["fw"] = p._string(obj, "fw", 32)
        out["board"] = p._string(obj, "board", 32)
        out["nonce"] = p._string(obj, "nonce", 32, 32, _HEX)
        out["needles"] = _needles(obj.get("needles"), p)
        p._copy(out, obj, "name", 32)
        if "pc" in obj:
            out["pc"] = hellomsg.identity(obj, "pc", p)
    elif kind == "button":
        out["event"] = p._string(obj, "event", 8)
        if out["event"] not in ("press", "long"):
            p._refuse("event", "must be 'press' or 'long'")
    elif kind == "status":
        out["rssi"] = (
            None if obj.get("rssi") is None else p._number(obj.get("rssi"), "rssi", -200, 50, True)
        )
        out["heap"] = p._number(obj.get("heap"), "heap", 0, 2**40, True)
        out["uptime"] = p._number(obj.get("uptime"), "uptime", 0.0)
    elif kind == "ack":
        out["of"] = p._string(obj, "of", 16)
        if out["of"] not in ("calibration", "settings"):
            p._refuse("of", "must be calibration or settings")
        p._copy_needle(out, obj)
    elif kind == "proof":
        out["mac"] = p._string(obj, "mac", 64, 64, _HEX)
    elif kind == "update_status":
        _update_status(out, obj, p)
    elif kind != "pair":
        raise p.ProtocolError("a device may not send '" + kind + "'")
    return out


_STATES = const(("receiving", "refused", "restarting", "confirmed", "rolled_back"))


def _update_status(out, obj, p):
    out["state"] = p._string(obj, "state", 16)
    if out["state"] not in _STATES:
        p._refuse("state", "must be one of " + ", ".join(_STATES))
    if "file" in obj:
        out["file"] = updatemsg.file_name(obj.get("file"), "file", p)
    if "offset" in obj:
        out["offset"] = p._number(obj.get("offset"), "offset", 0, updatemsg.MAX_FILE_BYTES, True)
    if "version" in obj:
        out["version"] = p._string(obj, "version", 32, 1, updatemsg._VERSION_CHARS)
    if "reason" in obj:
        out["reason"] = p._string(obj, "reason", 200, 1)
    state = out["state"]
    if state == "receiving" and ("file" not in out or "offset" not in out):
        raise p.ProtocolError("'receiving' needs 'file' and 'offset'")
    if state in ("refused", "rolled_back") and "reason" not in out:
        raise p.ProtocolError("'" + state + "' needs a 'reason'")
    if state in ("restarting", "confirmed", "rolled_back") and "version" not in out:
        raise p.ProtocolError("'" + state + "' needs a 'version'")
