"""Decoding the PC's `hello` and `pair` frames (docs/protocol.md, "Trust"): imported by the
protocol module only while a link opens, and dropped with the handshake, so the linked heap
does not carry this code."""

from micropython import const

_HEX = const("0123456789abcdef")
_DEVICE_ID_CHARS = const("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def identity(obj, key, p):
    """A meter's or a PC's id; `p` is the protocol module (its checks)."""
    return p._string(obj, key, 32, 1, _DEVICE_ID_CHARS)


def proto(obj, p, too_old="the PC app is too old: update it"):
    """The protocol version a hello names: 2 or later."""
    found = p._number(obj.get("proto"), "proto", 1, 1000, True)
    if found < 2:
        raise p.ProtocolError(too_old)
    return found


def decode(kind, obj, out, p):
    """The normal form of the PC's `hello` or `pair` frame, filled into `out`."""
    if kind == "pair":
        out["key"] = p._string(obj, "key", 64, 64, _HEX)
        out["pc"] = identity(obj, "pc", p)
        return out
    out["proto"] = proto(obj, p)
    out["server"] = p._string(obj, "server", 64, 1)
    out["pc"] = identity(obj, "pc", p)
    out["nonce"] = p._string(obj, "nonce", 32, 32, _HEX)
    if not isinstance(obj.get("paired"), bool):
        p._refuse("paired", "must be true or false")
    out["paired"] = obj["paired"]
    if "proof" in obj:
        out["proof"] = p._string(obj, "proof", 64, 64, _HEX)
    return out
