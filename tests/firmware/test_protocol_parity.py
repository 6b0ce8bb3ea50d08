"""The firmware's protocol module and the PC's agree on every frame (CPython side)."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sysboy_tray import protocol as pc
from sysboy_tray.errors import ProtocolError
from tests.firmware.upy import FIRMWARE


def _load_firmware_protocol() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fw_protocol", FIRMWARE / "protocol.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fw = _load_firmware_protocol()

KEYS = [
    "value", "points", "id", "proto", "calibration", "fw", "board", "output", "event",
    "rssi", "heap", "uptime", "of", "reason", "metric", "metrics", "server",
    "smoothing_ms", "idle_park_s", "raw", "unit", "label", "name",
]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=40),
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
@given(st.text(max_size=200), senders)
def test_any_text_decodes_alike(text: str, sender: Any) -> None:
    pc_result, fw_result = _both(text, sender)
    assert pc_result == fw_result
