"""Protocol v2 (docs/protocol.md) for the device: pure decode/encode of plain dicts."""

import json
import math
import sys

from micropython import const

_MAX_FRAME_BYTES = const(4096)
# arrays and objects in a frame: more would flood the heap while parsing
_MAX_CONTAINERS = const(100)
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
    "pair",
    "proof",
    "welcome",
    "update",
    "chunk",
    "update_status",
)
_MAX_NEEDLES = const(4)

# Text from the network is never stepped through character by character: MicroPython
# interns each character that iterating or indexing a str yields, for good, so a peer
# sending ever new characters would fill the heap with them. A string is held to a set of
# characters with strip() instead (in C; it gives "" when every character is in the set),
# and its control characters are looked for in its UTF-8 bytes.
_LOWER = const("abcdefghijklmnopqrstuvwxyz")
_ID_CHARS = const("abcdefghijklmnopqrstuvwxyz0123456789_")
_CPYTHON = sys.implementation.name == "cpython"
# Servers send the same few metric ids over and over: remember the good ones.
_known_ids = {}


class ProtocolError(ValueError):
    """A frame that breaks protocol v2; the text says how."""


def _refuse(key, what):
    raise ProtocolError("'" + key + "' " + what)


def _refuse_constant(name):
    raise ProtocolError(name + " is not a finite number")


def is_metric_id(text):
    """True when `text` may name a metric (and so a sample's `type`)."""
    if not isinstance(text, str):
        return False
    if text in _known_ids:
        return True
    if not 1 <= len(text) <= 32 or text in RESERVED:
        return False
    if text[:1].strip(_LOWER) or text.strip(_ID_CHARS):
        return False
    if len(_known_ids) < 16:
        _known_ids[text] = True
    return True


def _number(value, key, lo=None, hi=None, whole=False):
    """`value` checked as a number (an int when `whole`) within `lo`..`hi`; refused in words."""
    # bool is an int on CPython but not a number for the protocol
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        _refuse(key, "must be a whole number" if whole else "must be a number")
    if not whole:
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            _refuse(key, "is not a finite number")
    if lo is not None and value < lo:
        _refuse(key, "must be at least %g" % lo)
    if hi is not None and value > hi:
        _refuse(key, "must be at most %g" % hi)
    return value


def _string(obj, key, max_len, min_len=0, chars=None):
    """A string of `min_len`..`max_len` printable characters (all of them in `chars`)."""
    value = obj.get(key)
    if not isinstance(value, str):
        _refuse(key, "must be a string")
    if len(value) > max_len:
        _refuse(key, "is longer than %d characters" % max_len)
    if len(value) < min_len:
        _refuse(key, "is empty" if min_len == 1 else "must be %d characters" % min_len)
    if chars is not None:
        if value.strip(chars):  # the sets are printable ASCII: no control character either
            _refuse(key, "holds a character it may not hold")
        return value
    # every string may end up on a terminal: no escape sequences through us (C0 controls,
    # DEL, and the C1 controls U+0080..U+009F, which UTF-8 writes as C2 80..C2 9F)
    after_c2 = False
    for byte in _utf8(value):
        if byte < 32 or byte == 127 or (after_c2 and byte < 0xA0):
            _refuse(key, "holds a character it may not hold")
        after_c2 = byte == 0xC2
    return value


def _copy(out, obj, key, max_len):
    if key in obj:
        out[key] = _string(obj, key, max_len)


def _copy_needle(out, obj):
    if "needle" in obj:
        out["needle"] = _number(obj.get("needle"), "needle", 1, _MAX_NEEDLES, True)
    return out


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
        percent = _number(point[0], "percent", 0.0, 100.0)
        fraction = _number(point[1], "fraction", 0.0, 1.0)
        if result and (percent <= result[-1][0] or fraction <= result[-1][1]):
            raise ProtocolError("calibration points must strictly increase")
        result.append([percent, fraction])
    return result


def _metric_list(value):
    if not isinstance(value, list) or len(value) > 32:
        _refuse("metrics", "must be a list of at most 32")
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
    value = _number(obj.get("value"), "value")
    value = 0.0 if value < 0.0 else (100.0 if value > 100.0 else value)
    if len(obj) == 2:
        # the usual frame {"type", "value"}: reuse the parsed dict, no new allocation
        obj["value"] = value
        return obj
    out = {"type": kind, "value": value}
    if obj.get("raw") is not None:
        out["raw"] = _number(obj.get("raw"), "raw")
    _copy(out, obj, "unit", 16)
    _copy(out, obj, "label", 32)
    return _copy_needle(out, obj)


def _from_server(kind, obj):
    out = {"type": kind}
    if kind == "hello" or kind == "pair":
        # needed only while a link opens: the handshake drops that code again
        import hellomsg

        return hellomsg.decode(kind, obj, out, sys.modules[__name__])
    if kind == "welcome":
        needles = obj.get("needles")
        if not isinstance(needles, list) or not 1 <= len(needles) <= _MAX_NEEDLES:
            _refuse("needles", "must be a list of 1 to 4 metric ids")
        for item in needles:
            if not is_metric_id(item):
                _refuse("needles", "must hold metric ids")
        out["metrics"] = _metric_list(obj.get("metrics"))
        out["needles"] = needles
        return out
    if kind == "update" or kind == "chunk":
        # needed only while an update runs: that code stays off the heap until then
        import updatemsg

        return updatemsg.decode(kind, obj, out, sys.modules[__name__])
    if kind == "needle":
        value = obj.get("value")
        # null ends raw mode; a missing value is an error
        out["value"] = None if value is None and "value" in obj else _number(value, "value", 0, 1)
    elif kind == "calibration":
        out["points"] = check_points(obj.get("points"))
    elif kind == "settings":
        if "smoothing_ms" in obj:
            out["smoothing_ms"] = _number(obj.get("smoothing_ms"), "smoothing_ms", 0, 5000, True)
        if "idle_park_s" in obj:
            out["idle_park_s"] = _number(obj.get("idle_park_s"), "idle_park_s", 1.0, 3600.0)
        if len(out) == 1:
            raise ProtocolError("'settings' needs 'smoothing_ms' or 'idle_park_s'")
    elif kind == "park":
        _copy(out, obj, "reason", 32)
        if "metric" in obj:
            if not is_metric_id(obj["metric"]):
                _refuse("metric", "must be a metric id")
            out["metric"] = obj["metric"]
        _copy(out, obj, "label", 32)
    elif kind != "sweep" and kind != "identify":
        raise ProtocolError("a server may not send '" + kind + "'")
    return _copy_needle(out, obj)


def _utf8(text):
    """`text`'s UTF-8 bytes (CPython's json may give lone surrogates: they pass as bytes)."""
    return text.encode("utf-8", "surrogatepass") if _CPYTHON else text.encode()


def _text_of(data):
    size = len(data)
    # a character is at most 4 bytes: only long texts need the exact count
    if isinstance(data, str) and _MAX_FRAME_BYTES // 4 < size <= _MAX_FRAME_BYTES:
        size = len(_utf8(data))
    if size > _MAX_FRAME_BYTES:
        raise ProtocolError("message is larger than 4096 bytes")
    if isinstance(data, str):
        return data
    try:
        return str(data, "utf-8")
    except ValueError:  # UnicodeError on both runtimes
        raise ProtocolError("message is not valid UTF-8") from None


def _containers(text):
    """Arrays and objects in a JSON text; brackets inside strings do not count.

    Searched with str.find and str.count, in C, which also leave no garbage behind."""
    count = 0
    at = 0
    while True:
        quote = text.find('"', at)
        if quote < 0:
            return count + text.count("[", at) + text.count("{", at)
        count += text.count("[", at, quote) + text.count("{", at, quote)
        # the string ends at the next quote that an even run of backslashes leads up to
        at = quote + 1
        while True:
            quote = text.find('"', at)
            if quote < 0:
                return count  # never closed: json.loads refuses it
            run = 0
            while quote - run > at and text.startswith("\\", quote - run - 1):
                run += 1
            at = quote + 1
            if run % 2 == 0:
                break


def decode(data, sender):
    """Decode one frame from `sender` ("device" or "server") into a dict in normal form.

    `data` is the frame's text or its UTF-8 bytes. Raises ProtocolError, in words.
    """
    text = _text_of(data)
    # str.count runs in C: the exact scan is needed only for frames full of brackets
    if text.count("[") + text.count("{") > _MAX_CONTAINERS and _containers(text) > _MAX_CONTAINERS:
        raise ProtocolError("message holds more than %d arrays and objects" % _MAX_CONTAINERS)
    try:
        # CPython's json takes NaN/Infinity unless told not to; MicroPython's refuses them.
        obj = json.loads(text, parse_constant=_refuse_constant) if _CPYTHON else json.loads(text)
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
            # only the PC's side decodes these (tests, the parity check): the device never
            # imports that module, so its code stays off the device's heap
            import fromdevice

            return fromdevice.decode(kind, obj, sys.modules[__name__])
        return _from_server(kind, obj)
    if not is_metric_id(kind):
        raise ProtocolError("unknown message type '" + kind[:40] + "'")
    if sender != "server":
        raise ProtocolError("a device may not send samples")
    return _decode_sample(kind, obj)


def _check_finite(value):
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ProtocolError("a number is not finite")
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
