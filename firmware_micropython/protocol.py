"""Protocol v1 (docs/protocol.md) for the device: pure decode/encode of plain dicts."""

import json
import math
import sys

MAX_FRAME_BYTES = 4096
RESERVED = (
    "hello",
    "needle",
    "calibration",
    "settings",
    "sweep",
    "identify",
    "park",
    "button",
    "status",
    "ack",
    "error",
)
OUTPUTS = ("dac", "pwm", "sim")
BUTTON_EVENTS = ("press", "long")
ACKABLE = ("calibration", "settings")
MAX_METRICS_IN_HELLO = 32

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ID_CHARS = _LOWER + "0123456789_"
_DEVICE_ID_CHARS = _LOWER + _LOWER.upper() + "0123456789_-"
_CPYTHON = sys.implementation.name == "cpython"
# Servers send the same few metric ids over and over: remember the good ones.
_known_ids = {}


class ProtocolError(ValueError):
    """A frame that breaks protocol v1; the text says how."""


def _refuse_constant(name):
    raise ProtocolError(name + " is not a finite number")


def _loads(text):
    # CPython's json takes NaN/Infinity unless told not to; MicroPython's refuses them.
    if _CPYTHON:
        return json.loads(text, parse_constant=_refuse_constant)
    return json.loads(text)


def is_metric_id(text):
    """True when `text` may name a metric (and so a sample's `type`)."""
    if not isinstance(text, str):
        return False
    if text in _known_ids:
        return True
    if not 1 <= len(text) <= 32 or text in RESERVED:
        return False
    if text[0] not in _LOWER:
        return False
    for ch in text:
        if ch not in _ID_CHARS:
            return False
    if len(_known_ids) < 16:
        _known_ids[text] = True
    return True


def _is_number(value):
    # bool is an int on CPython but not a number for the protocol.
    return (isinstance(value, (int, float))) and not isinstance(value, bool)


def _finite(value, key):
    try:
        value = float(value)
    except OverflowError:
        raise ProtocolError("'" + key + "' is not a finite number") from None
    if not math.isfinite(value):
        raise ProtocolError("'" + key + "' is not a finite number")
    return value


def _number(obj, key, lo=None, hi=None):
    value = obj.get(key)
    if not _is_number(value):
        raise ProtocolError("'" + key + "' must be a number")
    value = _finite(value, key)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise ProtocolError(f"'{key}' must be at least {lo:g}")
        if lo is None:
            raise ProtocolError(f"'{key}' must be at most {hi:g}")
        raise ProtocolError(f"'{key}' must be between {lo:g} and {hi:g}")
    return value


def _integer(obj, key, lo, hi):
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError("'" + key + "' must be a whole number")
    if not lo <= value <= hi:
        raise ProtocolError(f"'{key}' must be between {lo} and {hi}")
    return value


def _string(obj, key, max_len, min_len=0):
    value = obj.get(key)
    if not isinstance(value, str):
        raise ProtocolError("'" + key + "' must be a string")
    if len(value) > max_len:
        raise ProtocolError(f"'{key}' is longer than {max_len} characters")
    if len(value) < min_len:
        raise ProtocolError("'" + key + "' is empty")
    return value


def _copy_string(out, obj, key, max_len):
    if key in obj:
        out[key] = _string(obj, key, max_len)


def check_points(points):
    """Validate calibration points; return them as a list of [percent, fraction] floats.

    Raises ProtocolError for fewer than 2 or more than 11 points, values out of range,
    or percents/fractions that do not strictly increase.
    """
    if not isinstance(points, (list, tuple)) or not 2 <= len(points) <= 11:
        raise ProtocolError("calibration needs 2 to 11 points")
    result = []
    for point in points:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ProtocolError("a calibration point is a pair [percent, fraction]")
        pair = {"percent": point[0], "fraction": point[1]}
        percent = _number(pair, "percent", 0.0, 100.0)
        fraction = _number(pair, "fraction", 0.0, 1.0)
        if result and (percent <= result[-1][0] or fraction <= result[-1][1]):
            raise ProtocolError("calibration points must strictly increase")
        result.append([percent, fraction])
    return result


def _metric_list(value):
    if not isinstance(value, list) or len(value) > MAX_METRICS_IN_HELLO:
        raise ProtocolError(f"'metrics' must be a list of at most {MAX_METRICS_IN_HELLO}")
    infos = []
    for item in value:
        if not isinstance(item, dict) or not is_metric_id(item.get("id")):
            raise ProtocolError("each entry of 'metrics' needs a metric 'id'")
        infos.append(
            {
                "id": item["id"],
                "label": _string(item, "label", 32),
                "unit": _string(item, "unit", 16),
            }
        )
    return infos


def _decode_sample(kind, obj):
    value = _number(obj, "value")
    value = 0.0 if value < 0.0 else (100.0 if value > 100.0 else value)
    if len(obj) == 2:
        # The usual frame {"type", "value"}: reuse the parsed dict, no new allocation.
        obj["value"] = value
        return obj
    out = {"type": kind, "value": value}
    if obj.get("raw") is not None:
        out["raw"] = _number(obj, "raw")
    _copy_string(out, obj, "unit", 16)
    _copy_string(out, obj, "label", 32)
    return out


def _device_hello(obj):
    device_id = _string(obj, "id", 32, 1)
    for ch in device_id:
        if ch not in _DEVICE_ID_CHARS:
            raise ProtocolError("'id' may hold only letters, digits, '_' and '-'")
    output = _string(obj, "output", 8)
    if output not in OUTPUTS:
        raise ProtocolError("'output' must be one of " + ", ".join(OUTPUTS))
    out = {
        "type": "hello",
        "proto": _integer(obj, "proto", 1, 1000),
        "id": device_id,
        "fw": _string(obj, "fw", 32),
        "board": _string(obj, "board", 32),
        "output": output,
        "calibration": check_points(obj.get("calibration")),
    }
    _copy_string(out, obj, "name", 32)
    return out


def _decode_from_device(kind, obj):
    if kind == "hello":
        return _device_hello(obj)
    if kind == "button":
        event = _string(obj, "event", 8)
        if event not in BUTTON_EVENTS:
            raise ProtocolError("'event' must be 'press' or 'long'")
        return {"type": "button", "event": event}
    if kind == "status":
        rssi = None if obj.get("rssi") is None else _integer(obj, "rssi", -200, 50)
        return {
            "type": "status",
            "rssi": rssi,
            "heap": _integer(obj, "heap", 0, 2**40),
            "uptime": _number(obj, "uptime", 0.0),
        }
    if kind == "ack":
        of = _string(obj, "of", 16)
        if of not in ACKABLE:
            raise ProtocolError("'of' must be one of " + ", ".join(ACKABLE))
        return {"type": "ack", "of": of}
    raise ProtocolError("a device may not send '" + kind + "'")


def _decode_from_server(kind, obj):
    if kind == "hello":
        metric = obj.get("metric")
        if not is_metric_id(metric):
            raise ProtocolError("'metric' must be a metric id")
        return {
            "type": "hello",
            "proto": _integer(obj, "proto", 1, 1000),
            "server": _string(obj, "server", 64, 1),
            "metric": metric,
            "metrics": _metric_list(obj.get("metrics")),
        }
    if kind == "needle":
        if "value" in obj and obj["value"] is None:
            return {"type": "needle", "value": None}
        return {"type": "needle", "value": _number(obj, "value", 0.0, 1.0)}
    if kind == "calibration":
        return {"type": "calibration", "points": check_points(obj.get("points"))}
    if kind == "settings":
        out = {"type": "settings"}
        if "smoothing_ms" in obj:
            out["smoothing_ms"] = _integer(obj, "smoothing_ms", 0, 5000)
        if "idle_park_s" in obj:
            out["idle_park_s"] = _number(obj, "idle_park_s", 1.0, 3600.0)
        if len(out) == 1:
            raise ProtocolError("'settings' needs 'smoothing_ms' or 'idle_park_s'")
        return out
    if kind == "sweep" or kind == "identify":
        return {"type": kind}
    if kind == "park":
        out = {"type": "park"}
        _copy_string(out, obj, "reason", 32)
        return out
    raise ProtocolError("a server may not send '" + kind + "'")


def _text_of(data):
    if isinstance(data, str):
        # A character is at most 4 bytes: only long texts need the exact count.
        if len(data) > MAX_FRAME_BYTES // 4 and _utf8_size(data) > MAX_FRAME_BYTES:
            raise ProtocolError(f"message is larger than {MAX_FRAME_BYTES} bytes")
        return data
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError(f"message is larger than {MAX_FRAME_BYTES} bytes")
    try:
        return str(data, "utf-8")
    except ValueError:  # UnicodeError on both runtimes
        raise ProtocolError("message is not valid UTF-8") from None


def _utf8_size(text):
    if len(text) > MAX_FRAME_BYTES:
        return len(text)
    if _CPYTHON:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-8"))


def decode(data, sender):
    """Decode one frame from `sender` ("device" or "server") into a dict in normal form.

    `data` is the frame's text or its UTF-8 bytes. Raises ProtocolError, in words.
    """
    text = _text_of(data)
    try:
        obj = _loads(text)
    except ProtocolError:
        raise
    except (ValueError, RuntimeError):  # RuntimeError: CPython's RecursionError
        raise ProtocolError("message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("message must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("message needs a 'type' string")
    if kind in RESERVED:
        if kind == "error":
            return {"type": "error", "reason": _string(obj, "reason", 200, 1)}
        if sender == "device":
            return _decode_from_device(kind, obj)
        return _decode_from_server(kind, obj)
    if not is_metric_id(kind):
        raise ProtocolError("unknown message type '" + kind[:40] + "'")
    if sender != "server":
        raise ProtocolError("a device may not send samples")
    return _decode_sample(kind, obj)


def _check_finite(value):
    if isinstance(value, float):
        _finite(value, "number")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_finite(item)
    elif isinstance(value, dict):
        for item in value.values():
            _check_finite(item)


def encode(msg):
    """One frame's text for the message dict `msg`, compact JSON.

    Raises ProtocolError when it holds a number that is not finite.
    """
    _check_finite(msg)
    return json.dumps(msg, separators=(",", ":"))
