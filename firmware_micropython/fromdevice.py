"""Decoding what a device sends, for the PC's side of the parity check (never on the device)."""

OUTPUTS = ("dac", "pwm", "sim")


def decode(kind, obj, p):
    """The normal form of a reserved message `kind` sent by a device, as a dict."""
    out = {"type": kind}
    if kind == "hello":
        device_id = p._id(obj, "id")
        output = p._string(obj, "output", 8)
        if output not in OUTPUTS:
            p._refuse("output", "must be one of " + ", ".join(OUTPUTS))
        out["proto"] = p._number(obj.get("proto"), "proto", 1, 1000, True)
        out["id"] = device_id
        out["fw"] = p._string(obj, "fw", 32)
        out["board"] = p._string(obj, "board", 32)
        out["output"] = output
        out["calibration"] = p.check_points(obj.get("calibration"))
        p._copy(out, obj, "name", 32)
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
        out["mac"] = p._string(obj, "mac", 64, 64, p._HEX)
    elif kind != "pair":
        raise p.ProtocolError("a device may not send '" + kind + "'")
    return out
