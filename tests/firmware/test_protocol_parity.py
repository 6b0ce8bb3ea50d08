"""The firmware's protocol module and the PC's agree on every frame (CPython side)."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sysboy_tray import protocol as pc
from sysboy_tray.errors import ProtocolError
from tests.firmware.upy import FIRMWARE


def _load(name: str, as_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(as_name, FIRMWARE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[as_name] = module  # the protocol hands itself to `fromdevice` by this name
    spec.loader.exec_module(module)
    return module


# the firmware imports `fromdevice` only to decode what a device sends (never on the device)
_load("updatemsg", "updatemsg")
_load("hellomsg", "hellomsg")
_load("fromdevice", "fromdevice")
fw = _load("protocol", "fw_protocol")

KEYS = [
    "value", "points", "id", "proto", "calibration", "fw", "board", "output", "event",
    "rssi", "heap", "uptime", "of", "reason", "metric", "metrics", "server",
    "smoothing_ms", "idle_park_s", "raw", "unit", "label", "name", "needle", "needles",
    "mac", "key", "pc", "nonce", "paired", "proof", "version", "files", "file", "offset",
    "data", "state",
]  # fmt: skip
# strings near the rules: control characters, hex of the right length, ids, brackets
edge_strings = st.sampled_from(
    ["0123456789abcdef" * 4, "0123456789ABCDEF" * 4, "a1b2c3d4", "a b", "\x1b[2J", "\x85",
     "\xa0", "\x7f", "[[{{", "dac", "calibration", "press"]
)  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=40) | edge_strings,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
kinds = st.sampled_from([*sorted(pc.RESERVED_TYPES), "vram", "cpu", "x", "BAD", "1a"])
senders = st.sampled_from(["device", "server"])


def _both(text: str, sender: Any) -> tuple[object, object]:
    try:
        mine: object = pc.to_dict(pc.decode(text, sender))
    except ProtocolError:
        mine = ProtocolError
    try:
        theirs: object = fw.decode(text, sender)
    except fw.ProtocolError:
        theirs = ProtocolError
    return mine, theirs


def test_reserved_types_match() -> None:
    assert set(fw.RESERVED) == set(pc.RESERVED_TYPES)


@settings(deadline=None)
@given(kinds, st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8), senders)
def test_structured_frames_decode_alike(kind: str, body: dict[str, Any], sender: Any) -> None:
    pc_result, fw_result = _both(json.dumps({"type": kind, **body}), sender)
    assert pc_result == fw_result


@settings(deadline=None)
@given(st.integers(0, 130), st.integers(0, 3), senders)
def test_frames_near_the_container_limit_decode_alike(
    lists: int, in_strings: int, sender: Any
) -> None:
    body = {"value": 1, "x": [[] for _ in range(lists)], "label": "[{" * in_strings}
    pc_result, fw_result = _both(json.dumps({"type": "cpu", **body}), sender)
    assert pc_result == fw_result


@settings(deadline=None)
@given(st.text(max_size=200), senders)
def test_any_text_decodes_alike(text: str, sender: Any) -> None:
    pc_result, fw_result = _both(text, sender)
    assert pc_result == fw_result


# firmware updates: names, sizes, hashes and base64 near the rules
file_names = st.sampled_from(
    ["app.mpy", "hal/esp32.mpy", "a/b/c/d.mpy", "a/b/c/d/e.mpy", "../x", "./a", "/abs", "a//b",
     "x" * 33, "ok-_.mpy", "a b", "\xe9.mpy", "hal/..", "", 7]
)  # fmt: skip
hashes = st.sampled_from(["0" * 64, "ab" * 32, "AB" * 32, "0" * 63, "g" * 64, None])
sizes = st.integers(-1, 2**21) | st.booleans() | st.floats(0, 10)
base64_data = st.sampled_from(
    ["AAAA", "AA==", "AAA=", "A===", "====", "AA=A", "", "AAA", "A" * 2732, "A" * 2736,
     "QUJD\n", "QU JD", "+/+/"]
)  # fmt: skip


@settings(deadline=None)
@given(
    st.lists(st.lists(file_names | sizes | hashes, min_size=2, max_size=4), max_size=3)
    | st.lists(st.tuples(file_names, sizes, hashes).map(list), max_size=4),
    st.sampled_from(["0.2.0", "1.0.0+dev_1", "0.2 beta", "", "v" * 33]),
)
def test_update_manifests_decode_alike(files: list[Any], version: str) -> None:
    text = json.dumps({"type": "update", "version": version, "files": files})
    pc_result, fw_result = _both(text, "server")
    assert pc_result == fw_result


@settings(deadline=None)
@given(file_names, st.integers(-2, 2**21) | st.floats(0, 4), base64_data, senders)
def test_chunks_decode_alike(name: object, offset: object, data: str, sender: Any) -> None:
    text = json.dumps({"type": "chunk", "file": name, "offset": offset, "data": data})
    pc_result, fw_result = _both(text, sender)
    assert pc_result == fw_result


@settings(deadline=None)
@given(
    st.sampled_from(["receiving", "refused", "restarting", "confirmed", "rolled_back", "ok"]),
    st.dictionaries(
        st.sampled_from(["file", "offset", "version", "reason"]),
        file_names | st.integers(-1, 5) | st.sampled_from(["0.2.0", "why", "", "\x1b"]),
    ),
    senders,
)
def test_update_statuses_decode_alike(state: str, body: dict[str, Any], sender: Any) -> None:
    text = json.dumps({"type": "update_status", "state": state, **body})
    pc_result, fw_result = _both(text, sender)
    assert pc_result == fw_result
