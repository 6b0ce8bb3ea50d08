"""Protocol v1 against the golden vectors shared with the firmware, plus properties."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysboy_tray import protocol
from sysboy_tray.errors import ProtocolError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "protocol.json").read_text("utf-8"))


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: c["name"])
def test_valid_vector_decodes_to_normal_form(case: dict[str, Any]) -> None:
    message = protocol.decode(case["text"], case["from"])
    assert protocol.to_dict(message) == case["expect"]
    # what we encode decodes to the same message
    assert protocol.decode(protocol.encode(message), case["from"]) == message


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["name"])
def test_invalid_vector_is_refused_with_protocol_error(case: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.decode(case["text"], case["from"])
    assert str(info.value)  # the reason is given in words


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(ProtocolError, match="UTF-8"):
        protocol.decode(b'{"type":"cpu","value":\xff}', "server")


def test_deep_nesting_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        protocol.decode("[" * 3000 + "]" * 3000, "server")


def test_sample_helper_clamps_and_refuses_bad_ids() -> None:
    assert protocol.sample("vram", 123.0).value == 100.0
    assert protocol.encode(protocol.sample("vram", 60.5)) == '{"type":"vram","value":60.5}'
    with pytest.raises(ProtocolError):
        protocol.sample("hello", 1.0)
    with pytest.raises(ProtocolError):
        protocol.sample("cpu", math.nan)


def test_no_metric_id_is_reserved() -> None:
    for kind in protocol.RESERVED_TYPES:
        assert not protocol.is_metric_id(kind)


@given(st.text(max_size=300), st.sampled_from(["device", "server"]))
def test_any_text_decodes_or_raises_protocol_error(text: str, sender: protocol.Sender) -> None:
    with contextlib.suppress(ProtocolError):
        protocol.decode(text, sender)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
kinds = st.sampled_from([*sorted(protocol.RESERVED_TYPES), "vram", "cpu", "x", "BAD"])


@given(
    kinds,
    st.dictionaries(
        st.sampled_from(
            [
                "value",
                "points",
                "id",
                "proto",
                "calibration",
                "fw",
                "board",
                "output",
                "event",
                "rssi",
                "heap",
                "uptime",
                "of",
                "reason",
                "metric",
                "metrics",
                "server",
                "smoothing_ms",
                "idle_park_s",
                "raw",
                "unit",
                "label",
            ]
        ),
        json_values,
        max_size=8,
    ),
    st.sampled_from(["device", "server"]),
)
def test_structured_garbage_never_escapes_protocol_error(
    kind: str, body: dict[str, Any], sender: protocol.Sender
) -> None:
    text = json.dumps({"type": kind, **body})
    try:
        message = protocol.decode(text, sender)
    except ProtocolError:
        return
    # whatever is accepted re-encodes to valid, finite JSON that decodes the same
    assert protocol.decode(protocol.encode(message), sender) == message
