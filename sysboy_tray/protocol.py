"""Protocol v2 (docs/protocol.md): pure encode/decode, no sockets, no asyncio."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from sysboy_tray import PROTOCOL_VERSION
from sysboy_tray.errors import ProtocolError

MAX_FRAME_BYTES = 4096
RESERVED_TYPES = frozenset(
    {
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
    }
)
UPDATE_STATES = ("receiving", "refused", "restarting", "confirmed", "rolled_back")
MAX_UPDATE_FILES = 40
MAX_FILE_BYTES = 1048576
CHUNK_BYTES = 2048  # a chunk's data before base64: 2,732 characters, well inside a frame
CHUNK_B64 = (CHUNK_BYTES + 2) // 3 * 4
OUTPUTS = ("dac", "pwm", "sim")
BUTTON_EVENTS = ("press", "long")
ACKABLE = ("calibration", "settings")
MAX_METRICS_IN_HELLO = 32
MAX_NEEDLES = 4
# arrays and objects in one frame, counted before parsing: the largest valid frame (a hello
# with four needles of eleven points) holds 55, while a 4 KiB frame of nested lists would
# cost the device some 150 KB of heap
MAX_CONTAINERS = 100
KEY_HEX = 64  # a pairing key and a proof: 32 bytes in hex
NONCE_HEX = 32  # 16 random bytes
TOO_OLD = "firmware too old to pair: update it over USB"
PC_TOO_OLD = "the PC app is too old for this meter: update it"

_METRIC_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_HEX = re.compile(r"[0-9a-f]*")
_VERSION = re.compile(r"[0-9A-Za-z_.+-]{1,32}")
_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}(/[A-Za-z0-9_.-]{1,32}){0,3}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")

Sender = Literal["device", "server"]
Point = tuple[float, float]


def is_metric_id(text: object) -> bool:
    """True when `text` may name a metric (and so a sample's `type`)."""
    return (
        isinstance(text, str)
        and text not in RESERVED_TYPES
        and _METRIC_ID.fullmatch(text) is not None
    )


@dataclass(frozen=True)
class Sample:
    """A metric value for the needle, in percent of full scale."""

    metric: str
    value: float
    raw: float | None = None
    unit: str | None = None
    label: str | None = None
    needle: int | None = None  # None: needle 1


@dataclass(frozen=True)
class MetricInfo:
    """One entry of the server's list of metrics."""

    id: str
    label: str
    unit: str


@dataclass(frozen=True)
class NeedleInfo:
    """One needle as the device's hello reports it."""

    output: str
    calibration: tuple[Point, ...]


@dataclass(frozen=True)
class DeviceHello:
    """The device's first message: who it is, its needles, and its challenge."""

    id: str
    fw: str
    board: str
    nonce: str
    needles: tuple[NeedleInfo, ...]
    name: str | None = None
    pc: str | None = None  # the PC it is paired with; None while unpaired
    proto: int = PROTOCOL_VERSION

    @property
    def calibration(self) -> tuple[Point, ...]:
        """Needle 1's calibration."""
        return self.needles[0].calibration


@dataclass(frozen=True)
class ServerHello:
    """The server's answer to a device's hello: its challenge, and its proof when paired."""

    server: str
    pc: str
    nonce: str
    paired: bool
    proof: str | None = None
    proto: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class Needle:
    """A raw output fraction for live calibration; None ends raw mode."""

    value: float | None
    needle: int | None = None  # None: every needle


@dataclass(frozen=True)
class Calibration:
    """A piecewise-linear map from percent to output fraction."""

    points: tuple[Point, ...]
    needle: int | None = None  # None: every needle


@dataclass(frozen=True)
class Settings:
    """Device settings; None leaves a setting as it is."""

    smoothing_ms: int | None = None
    idle_park_s: float | None = None
    needle: int | None = None  # None: every needle


@dataclass(frozen=True)
class Sweep:
    """Move the needle across the whole scale and back."""

    needle: int | None = None  # None: every needle


@dataclass(frozen=True)
class Identify:
    """Wiggle the needle so the user sees which device this is."""

    needle: int | None = None  # None: every needle


@dataclass(frozen=True)
class Park:
    """Glide the needle to rest (PC sleeping or quitting, or its metric has nothing to show)."""

    reason: str | None = None
    needle: int | None = None  # None: every needle
    # the metric the needle shows, which has no value now, and its label
    metric: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class Button:
    """A button event on the device."""

    event: str


@dataclass(frozen=True)
class Status:
    """The device's heartbeat."""

    rssi: int | None
    heap: int
    uptime: float


@dataclass(frozen=True)
class Ack:
    """The device took a command."""

    of: str
    needle: int | None = None


@dataclass(frozen=True)
class Error:
    """A refusal, in words."""

    reason: str


@dataclass(frozen=True)
class Welcome:
    """The link is proven: the metrics the PC offers and what each needle shows."""

    metrics: tuple[MetricInfo, ...]
    needles: tuple[str, ...]


@dataclass(frozen=True)
class Proof:
    """The device's answer to the PC's proof: HMAC-SHA256 in hex."""

    mac: str


@dataclass(frozen=True)
class PairRequest:
    """The device's button was pressed while it looks for a PC to pair with."""


@dataclass(frozen=True)
class PairGrant:
    """The PC's answer to a pair request: the new key and the PC's id."""

    key: str
    pc: str


@dataclass(frozen=True)
class UpdateFile:
    """One file of a firmware update: its path on the device, size and SHA-256 (hex)."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Update:
    """The manifest of a firmware update: the version and every file it is made of."""

    version: str
    files: tuple[UpdateFile, ...]


@dataclass(frozen=True)
class Chunk:
    """A piece of one file of an update, at `offset`, base64 in `data`."""

    file: str
    offset: int
    data: str


@dataclass(frozen=True)
class UpdateStatus:
    """The device's word on an update: the next byte it wants, or the outcome."""

    state: str
    file: str | None = None
    offset: int | None = None
    version: str | None = None
    reason: str | None = None


Message = (
    Sample
    | DeviceHello
    | ServerHello
    | Needle
    | Calibration
    | Settings
    | Sweep
    | Identify
    | Park
    | Button
    | Status
    | Ack
    | Error
    | Welcome
    | Proof
    | PairRequest
    | PairGrant
    | Update
    | Chunk
    | UpdateStatus
)

LINEAR: tuple[Point, ...] = ((0.0, 0.0), (100.0, 1.0))


# -- decoding -----------------------------------------------------------------------------


def _refuse_constant(name: str) -> float:
    raise ProtocolError(f"{name} is not a finite number")


def _number(
    obj: dict[str, Any], key: str, *, lo: float | None = None, hi: float | None = None
) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"'{key}' must be a number")
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float
        value = math.inf
    if not math.isfinite(value):
        raise ProtocolError(f"'{key}' is not a finite number")
    if lo is not None and value < lo:
        raise ProtocolError(f"'{key}' must be at least {lo:g}")
    if hi is not None and value > hi:
        raise ProtocolError(f"'{key}' must be at most {hi:g}")
    return value


def _integer(obj: dict[str, Any], key: str, *, lo: int, hi: int) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(f"'{key}' must be a whole number")
    if not lo <= value <= hi:
        raise ProtocolError(f"'{key}' must be between {lo} and {hi}")
    return value


def _string(obj: dict[str, Any], key: str, max_len: int, *, min_len: int = 0) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"'{key}' must be a string")
    if len(value) > max_len:
        raise ProtocolError(f"'{key}' is longer than {max_len} characters")
    if len(value) < min_len:
        raise ProtocolError(f"'{key}' is empty")
    # every string may end up on a terminal (status, log): no escape sequences through us
    if _CONTROL.search(value):
        raise ProtocolError(f"'{key}' holds a control character")
    return value


def _hex(obj: dict[str, Any], key: str, length: int) -> str:
    value = _string(obj, key, length, min_len=length)
    if _HEX.fullmatch(value) is None:
        raise ProtocolError(f"'{key}' must be {length} lowercase hex digits")
    return value


def _id(obj: dict[str, Any], key: str) -> str:
    value = _string(obj, key, 32, min_len=1)
    if _DEVICE_ID.fullmatch(value) is None:
        raise ProtocolError(f"'{key}' may hold only letters, digits, '_' and '-'")
    return value


def _needle(obj: dict[str, Any]) -> int | None:
    """The optional `needle` key: which needle (1..4) a message is for."""
    return _integer(obj, "needle", lo=1, hi=MAX_NEEDLES) if "needle" in obj else None


def _optional_string(obj: dict[str, Any], key: str, max_len: int) -> str | None:
    return _string(obj, key, max_len) if key in obj else None


def check_points(points: object) -> tuple[Point, ...]:
    """Validate calibration points; return them as float pairs.

    Raises:
        ProtocolError: fewer than 2 or more than 11 points, values out of range,
            or percents/fractions that do not strictly increase.
    """
    if not isinstance(points, list | tuple) or not 2 <= len(points) <= 11:
        raise ProtocolError("calibration needs 2 to 11 points")
    result: list[Point] = []
    for point in points:
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise ProtocolError("a calibration point is a pair [percent, fraction]")
        pair = {"percent": point[0], "fraction": point[1]}
        percent = _number(pair, "percent", lo=0.0, hi=100.0)
        fraction = _number(pair, "fraction", lo=0.0, hi=1.0)
        if result and (percent <= result[-1][0] or fraction <= result[-1][1]):
            raise ProtocolError("calibration points must strictly increase")
        result.append((percent, fraction))
    return tuple(result)


def _metric_list(value: object) -> tuple[MetricInfo, ...]:
    if not isinstance(value, list) or len(value) > MAX_METRICS_IN_HELLO:
        raise ProtocolError(f"'metrics' must be a list of at most {MAX_METRICS_IN_HELLO}")
    infos = []
    for item in value:
        if not isinstance(item, dict) or not is_metric_id(item.get("id")):
            raise ProtocolError("each entry of 'metrics' needs a metric 'id'")
        infos.append(MetricInfo(item["id"], _string(item, "label", 32), _string(item, "unit", 16)))
    return tuple(infos)


def _needle_metrics(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_NEEDLES:
        raise ProtocolError(f"'needles' must be a list of 1 to {MAX_NEEDLES} metric ids")
    for item in value:
        if not is_metric_id(item):
            raise ProtocolError("each entry of 'needles' must be a metric id")
    return tuple(value)


def _decode_sample(kind: str, obj: dict[str, Any]) -> Sample:
    value = min(100.0, max(0.0, _number(obj, "value")))
    raw = None if obj.get("raw") is None else _number(obj, "raw")
    return Sample(
        kind,
        value,
        raw,
        _optional_string(obj, "unit", 16),
        _optional_string(obj, "label", 32),
        _needle(obj),
    )


def _device_needles(value: object) -> tuple[NeedleInfo, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_NEEDLES:
        raise ProtocolError(f"'needles' must be a list of 1 to {MAX_NEEDLES} needles")
    needles = []
    for item in value:
        if not isinstance(item, dict):
            raise ProtocolError("each entry of 'needles' must be an object")
        output = _string(item, "output", 8)
        if output not in OUTPUTS:
            raise ProtocolError(f"'output' must be one of {', '.join(OUTPUTS)}")
        needles.append(NeedleInfo(output, check_points(item.get("calibration"))))
    return tuple(needles)


def _proto(obj: dict[str, Any], too_old: str) -> int:
    proto = _integer(obj, "proto", lo=1, hi=1000)
    if proto < PROTOCOL_VERSION:
        raise ProtocolError(too_old)
    return proto


def _decode_from_device(kind: str, obj: dict[str, Any]) -> Message:
    if kind == "hello":
        return DeviceHello(
            proto=_proto(obj, TOO_OLD),
            id=_id(obj, "id"),
            fw=_string(obj, "fw", 32),
            board=_string(obj, "board", 32),
            nonce=_hex(obj, "nonce", NONCE_HEX),
            needles=_device_needles(obj.get("needles")),
            name=_optional_string(obj, "name", 32),
            pc=_id(obj, "pc") if "pc" in obj else None,
        )
    if kind == "button":
        event = _string(obj, "event", 8)
        if event not in BUTTON_EVENTS:
            raise ProtocolError("'event' must be 'press' or 'long'")
        return Button(event)
    if kind == "status":
        rssi = None if obj.get("rssi") is None else _integer(obj, "rssi", lo=-200, hi=50)
        return Status(
            rssi,
            _integer(obj, "heap", lo=0, hi=2**40),
            _number(obj, "uptime", lo=0.0),
        )
    if kind == "ack":
        of = _string(obj, "of", 16)
        if of not in ACKABLE:
            raise ProtocolError(f"'of' must be one of {', '.join(ACKABLE)}")
        return Ack(of, _needle(obj))
    if kind == "proof":
        return Proof(_hex(obj, "mac", KEY_HEX))
    if kind == "pair":
        return PairRequest()
    if kind == "update_status":
        return _decode_update_status(obj)
    raise ProtocolError(f"a device may not send '{kind}'")


def _decode_from_server(kind: str, obj: dict[str, Any]) -> Message:
    if kind == "hello":
        paired = obj.get("paired")
        if not isinstance(paired, bool):
            raise ProtocolError("'paired' must be true or false")
        return ServerHello(
            proto=_proto(obj, PC_TOO_OLD),
            server=_string(obj, "server", 64, min_len=1),
            pc=_id(obj, "pc"),
            nonce=_hex(obj, "nonce", NONCE_HEX),
            paired=paired,
            proof=_hex(obj, "proof", KEY_HEX) if "proof" in obj else None,
        )
    if kind == "needle":
        if obj.get("value", 0) is None:
            return Needle(None, _needle(obj))
        return Needle(_number(obj, "value", lo=0.0, hi=1.0), _needle(obj))
    if kind == "calibration":
        return Calibration(check_points(obj.get("points")), _needle(obj))
    if kind == "settings":
        smoothing = _integer(obj, "smoothing_ms", lo=0, hi=5000) if "smoothing_ms" in obj else None
        idle = _number(obj, "idle_park_s", lo=1.0, hi=3600.0) if "idle_park_s" in obj else None
        if smoothing is None and idle is None:
            raise ProtocolError("'settings' needs 'smoothing_ms' or 'idle_park_s'")
        return Settings(smoothing, idle, _needle(obj))
    if kind == "sweep":
        return Sweep(_needle(obj))
    if kind == "identify":
        return Identify(_needle(obj))
    if kind == "park":
        metric = obj.get("metric")
        if metric is not None and not is_metric_id(metric):
            raise ProtocolError("'park' 'metric' must be a metric id")
        return Park(
            _optional_string(obj, "reason", 32),
            _needle(obj),
            metric,
            _optional_string(obj, "label", 32),
        )
    if kind == "welcome":
        return Welcome(_metric_list(obj.get("metrics")), _needle_metrics(obj.get("needles")))
    if kind == "pair":
        return PairGrant(_hex(obj, "key", KEY_HEX), _id(obj, "pc"))
    if kind == "update":
        return Update(_version(obj), _update_files(obj.get("files")))
    if kind == "chunk":
        data = _string(obj, "data", CHUNK_B64, min_len=4)
        if len(data) % 4 or _BASE64.fullmatch(data) is None:
            raise ProtocolError("'data' must be base64")
        return Chunk(
            _file_name(obj.get("file"), "file"),
            _integer(obj, "offset", lo=0, hi=MAX_FILE_BYTES),
            data,
        )
    raise ProtocolError(f"a server may not send '{kind}'")


def _version(obj: dict[str, Any]) -> str:
    version = _string(obj, "version", 32, min_len=1)
    if _VERSION.fullmatch(version) is None:
        raise ProtocolError("'version' holds a character it may not hold")
    return version


def _file_name(value: object, key: str) -> str:
    if not isinstance(value, str) or _FILE_NAME.fullmatch(value) is None:
        raise ProtocolError(f"'{key}' must be a file path of up to 4 plain names")
    if any(part in (".", "..") for part in value.split("/")):
        raise ProtocolError(f"'{key}' must not climb out of its folder")
    return value


def _update_files(value: object) -> tuple[UpdateFile, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_UPDATE_FILES:
        raise ProtocolError(f"'files' must be a list of 1 to {MAX_UPDATE_FILES} files")
    files = []
    for item in value:
        if not isinstance(item, list) or len(item) != 3:
            raise ProtocolError("each entry of 'files' is [name, size, sha256]")
        size = item[1]
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FILE_BYTES:
            raise ProtocolError(f"a file's size must be 1 to {MAX_FILE_BYTES} bytes")
        digest = item[2]
        if not isinstance(digest, str) or len(digest) != 64 or _HEX.fullmatch(digest) is None:
            raise ProtocolError("a file's sha256 must be 64 lowercase hex digits")
        files.append(UpdateFile(_file_name(item[0], "files"), size, digest))
    if len({f.name for f in files}) != len(files):
        raise ProtocolError("'files' names a file twice")
    return tuple(files)


def _decode_update_status(obj: dict[str, Any]) -> UpdateStatus:
    state = _string(obj, "state", 16)
    if state not in UPDATE_STATES:
        raise ProtocolError(f"'state' must be one of {', '.join(UPDATE_STATES)}")
    status = UpdateStatus(
        state,
        _file_name(obj.get("file"), "file") if "file" in obj else None,
        _integer(obj, "offset", lo=0, hi=MAX_FILE_BYTES) if "offset" in obj else None,
        _version(obj) if "version" in obj else None,
        _string(obj, "reason", 200, min_len=1) if "reason" in obj else None,
    )
    if state == "receiving" and (status.file is None or status.offset is None):
        raise ProtocolError("'receiving' needs 'file' and 'offset'")
    if state in ("refused", "rolled_back") and status.reason is None:
        raise ProtocolError(f"'{state}' needs a 'reason'")
    if state in ("restarting", "confirmed", "rolled_back") and status.version is None:
        raise ProtocolError(f"'{state}' needs a 'version'")
    return status


def _containers(text: str) -> int:
    """Arrays and objects in a JSON text, brackets inside strings not counted."""
    count = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "[" or ch == "{":
            count += 1
    return count


def decode(data: str | bytes, sender: Sender) -> Message:
    """Decode one frame sent by `sender` into a message in normal form.

    Args:
        data: the frame's payload (text, or its UTF-8 bytes).
        sender: who sent it, "device" or "server".

    Returns:
        The message.

    Raises:
        ProtocolError: the frame breaks protocol v2; the text says how.
    """
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_FRAME_BYTES:
            raise ProtocolError(f"message is larger than {MAX_FRAME_BYTES} bytes")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("message is not valid UTF-8") from None
    else:
        text = data
        if (
            len(text) > MAX_FRAME_BYTES
            or len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
        ):
            raise ProtocolError(f"message is larger than {MAX_FRAME_BYTES} bytes")
    if text.count("[") + text.count("{") > MAX_CONTAINERS and _containers(text) > MAX_CONTAINERS:
        raise ProtocolError(f"message holds more than {MAX_CONTAINERS} arrays and objects")
    try:
        obj = json.loads(text, parse_constant=_refuse_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError):
        raise ProtocolError("message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("message must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("message needs a 'type' string")
    if kind in RESERVED_TYPES:
        if kind == "error":
            return Error(_string(obj, "reason", 200, min_len=1))
        if sender == "device":
            return _decode_from_device(kind, obj)
        return _decode_from_server(kind, obj)
    if not is_metric_id(kind):
        raise ProtocolError(f"unknown message type '{kind[:40]}'")
    if sender != "server":
        raise ProtocolError("a device may not send samples")
    return _decode_sample(kind, obj)


# -- encoding -----------------------------------------------------------------------------


def to_dict(message: Message) -> dict[str, Any]:
    """The message in normal form, as the JSON object that goes on the wire."""
    match message:
        case Sample():
            out: dict[str, Any] = {"type": message.metric, "value": message.value}
            if message.raw is not None:
                out["raw"] = message.raw
            if message.unit is not None:
                out["unit"] = message.unit
            if message.label is not None:
                out["label"] = message.label
            return _with_needle(out, message.needle)
        case DeviceHello():
            out = {
                "type": "hello",
                "proto": message.proto,
                "id": message.id,
                "fw": message.fw,
                "board": message.board,
                "nonce": message.nonce,
                "needles": [
                    {"output": n.output, "calibration": [list(p) for p in n.calibration]}
                    for n in message.needles
                ],
            }
            if message.name is not None:
                out["name"] = message.name
            if message.pc is not None:
                out["pc"] = message.pc
            return out
        case ServerHello():
            out = {
                "type": "hello",
                "proto": message.proto,
                "server": message.server,
                "pc": message.pc,
                "nonce": message.nonce,
                "paired": message.paired,
            }
            if message.proof is not None:
                out["proof"] = message.proof
            return out
        case Needle():
            return _with_needle({"type": "needle", "value": message.value}, message.needle)
        case Calibration():
            points = [list(p) for p in message.points]
            return _with_needle({"type": "calibration", "points": points}, message.needle)
        case Settings():
            out = {"type": "settings"}
            if message.smoothing_ms is not None:
                out["smoothing_ms"] = message.smoothing_ms
            if message.idle_park_s is not None:
                out["idle_park_s"] = message.idle_park_s
            return _with_needle(out, message.needle)
        case Sweep():
            return _with_needle({"type": "sweep"}, message.needle)
        case Identify():
            return _with_needle({"type": "identify"}, message.needle)
        case Park():
            out = {"type": "park"}
            for key in ("reason", "metric", "label"):
                if getattr(message, key) is not None:
                    out[key] = getattr(message, key)
            return _with_needle(out, message.needle)
        case Button():
            return {"type": "button", "event": message.event}
        case Status():
            return {
                "type": "status",
                "rssi": message.rssi,
                "heap": message.heap,
                "uptime": message.uptime,
            }
        case Ack():
            return _with_needle({"type": "ack", "of": message.of}, message.needle)
        case Error():
            return {"type": "error", "reason": message.reason}
        case Welcome():
            return {
                "type": "welcome",
                "metrics": [
                    {"id": m.id, "label": m.label, "unit": m.unit} for m in message.metrics
                ],
                "needles": list(message.needles),
            }
        case Proof():
            return {"type": "proof", "mac": message.mac}
        case PairRequest():
            return {"type": "pair"}
        case PairGrant():
            return {"type": "pair", "key": message.key, "pc": message.pc}
        case Update():
            files = [[f.name, f.size, f.sha256] for f in message.files]
            return {"type": "update", "version": message.version, "files": files}
        case Chunk():
            return {
                "type": "chunk",
                "file": message.file,
                "offset": message.offset,
                "data": message.data,
            }
        case UpdateStatus():
            out = {"type": "update_status", "state": message.state}
            for key in ("file", "offset", "version", "reason"):
                if getattr(message, key) is not None:
                    out[key] = getattr(message, key)
            return out
    raise TypeError(f"not a protocol message: {message!r}")  # pragma: no cover


def _with_needle(out: dict[str, Any], needle: int | None) -> dict[str, Any]:
    if needle is not None:
        out["needle"] = needle
    return out


def encode(message: Message) -> str:
    """One frame's text for `message`, compact JSON."""
    return json.dumps(to_dict(message), separators=(",", ":"), allow_nan=False)


def sample(metric: str, percent: float, **extra: Any) -> Sample:
    """A sample with its value clamped to 0..100.

    Raises:
        ProtocolError: `metric` is not a metric id or `percent` is not finite.
    """
    if not is_metric_id(metric):
        raise ProtocolError(f"'{metric}' is not a metric id")
    if not math.isfinite(percent):
        raise ProtocolError("a sample's value must be finite")
    raw = extra.get("raw")
    return Sample(
        metric,
        min(100.0, max(0.0, float(percent))),
        None if raw is None else float(raw),
        extra.get("unit"),
        extra.get("label"),
        extra.get("needle"),
    )


# -- the handshake's proofs (HMAC-SHA256, RFC 2104) ----------------------------------------------


def _proof(key_hex: str, label: str, first: str, second: str, device_id: str, pc_id: str) -> str:
    msg = "\n".join((label, first, second, device_id, pc_id)).encode()
    return hmac.new(bytes.fromhex(key_hex), msg, hashlib.sha256).hexdigest()


def pc_proof(key_hex: str, device_nonce: str, pc_nonce: str, device_id: str, pc_id: str) -> str:
    """What the PC sends in its hello to show it holds the pairing key."""
    return _proof(key_hex, "sysboy2 pc", device_nonce, pc_nonce, device_id, pc_id)


def device_proof(key_hex: str, device_nonce: str, pc_nonce: str, device_id: str, pc_id: str) -> str:
    """What the device sends in its `proof` to show it holds the pairing key."""
    return _proof(key_hex, "sysboy2 device", pc_nonce, device_nonce, device_id, pc_id)


def same_proof(given: str, expected: str) -> bool:
    """True when a received proof is the expected one (constant-time compare)."""
    return hmac.compare_digest(given.encode(), expected.encode())
