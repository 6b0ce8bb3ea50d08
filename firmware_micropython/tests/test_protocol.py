"""Protocol v1 against the golden vectors shared with the PC."""

import json

import protocol
from support import heap_kept, new_characters, raises, repo_root


def _vectors():
    with open(repo_root() + "/tests/vectors/protocol.json") as f:
        return json.load(f)


VECTORS = _vectors()


def test_valid_vectors_decode_to_normal_form():
    for case in VECTORS["valid"]:
        got = protocol.decode(case["text"], case["from"])
        assert got == case["expect"], case["name"] + ": " + repr(got)
        # what we encode decodes to the same message
        again = protocol.decode(protocol.encode(got), case["from"])
        assert again == case["expect"], case["name"]


def test_normal_form_types_are_exact():
    for case in VECTORS["valid"]:
        got = protocol.decode(case["text"], case["from"])
        for key, want in case["expect"].items():
            assert type(got[key]) is type(want), case["name"] + " " + key


def test_invalid_vectors_raise_protocol_error_in_words():
    for case in VECTORS["invalid"]:
        with raises(protocol.ProtocolError) as info:
            protocol.decode(case["text"], case["from"])
        assert str(info.value), case["name"]


def test_protocol_error_is_a_value_error():
    assert issubclass(protocol.ProtocolError, ValueError)


def test_bytes_are_decoded_and_bad_utf8_refused():
    assert protocol.decode(b'{"type":"cpu","value":5}', "server") == {"type": "cpu", "value": 5.0}
    with raises(protocol.ProtocolError, "UTF-8"):
        protocol.decode(b'{"type":"cpu","value":\xff}', "server")


def test_oversized_frames_are_refused_as_text_and_bytes():
    pad = "x" * 4100
    text = '{"type":"cpu","value":1,"p":"' + pad + '"}'
    with raises(protocol.ProtocolError, "4096"):
        protocol.decode(text, "server")
    with raises(protocol.ProtocolError, "4096"):
        protocol.decode(text.encode(), "server")
    # 1100 three-byte characters: few characters, too many bytes
    wide = '{"type":"cpu","value":1,"p":"' + "\u20ac" * 1400 + '"}'
    with raises(protocol.ProtocolError, "4096"):
        protocol.decode(wide, "server")


def test_deep_nesting_is_a_protocol_error():
    with raises(protocol.ProtocolError):
        protocol.decode("[" * 1500 + "]" * 1500, "server")


def test_huge_integer_value_is_not_finite():
    with raises(protocol.ProtocolError, "finite"):
        protocol.decode('{"type":"cpu","value":' + "9" * 400 + "}", "server")


def test_uptime_below_zero_is_refused_in_words():
    with raises(protocol.ProtocolError, "at least"):
        protocol.decode('{"type":"status","rssi":null,"heap":1,"uptime":-1}', "device")


def test_metric_ids():
    for kind in protocol.RESERVED:
        assert not protocol.is_metric_id(kind)
    assert protocol.is_metric_id("vram")
    assert protocol.is_metric_id("gpu_temp2")
    for bad in ("", "Vram", "1cpu", "_x", "a-b", "a" * 33, None, 5, ["cpu"], {"a": 1}):
        assert not protocol.is_metric_id(bad), repr(bad)


def test_metric_list_with_unhashable_id_is_refused():
    text = '{"type":"welcome","needles":["cpu"],"metrics":[{"id":[1]}]}'
    with raises(protocol.ProtocolError, "metric"):
        protocol.decode(text, "server")


def test_check_points_returns_float_pairs():
    points = protocol.check_points([[0, 0], (50, 0.5), [100, 1]])
    assert points == [[0.0, 0.0], [50.0, 0.5], [100.0, 1.0]]
    assert all(type(p) is list and type(p[0]) is float for p in points)
    for bad in (None, [[0, 0]], [[0, 0], [0, 1]], [[0, 0], [100, True]], [[0, 0], "ab"]):
        with raises(protocol.ProtocolError):
            protocol.check_points(bad)


def test_encode_is_compact_and_refuses_non_finite():
    text = protocol.encode({"type": "button", "event": "press"})
    assert " " not in text
    assert json.loads(text) == {"type": "button", "event": "press"}
    with raises(protocol.ProtocolError, "finite"):
        protocol.encode({"type": "status", "rssi": None, "heap": 1, "uptime": float("inf")})
    with raises(protocol.ProtocolError, "finite"):
        protocol.encode({"type": "calibration", "points": [[0.0, float("nan")]]})


def test_device_messages_round_trip():
    status = {"type": "status", "rssi": -60, "heap": 51234, "uptime": 3.5}
    assert protocol.decode(protocol.encode(status), "device") == status
    ack = {"type": "ack", "of": "settings"}
    assert protocol.decode(protocol.encode(ack), "device") == ack


def test_non_ascii_label_survives():
    got = protocol.decode('{"type":"t","value":1,"label":"GPU \u00b0C"}', "server")
    assert got["label"] == "GPU \u00b0C"
    assert protocol.decode(protocol.encode(got), "server") == got


def test_a_frame_of_nested_lists_is_refused_before_it_is_parsed():
    import gc

    text = '{"type":"cpu","value":1,"x":' + "[" * 2000 + "]" * 2000 + "}"
    gc.collect()
    before = gc.mem_free() if hasattr(gc, "mem_free") else 0
    with raises(protocol.ProtocolError, "100"):
        protocol.decode(text, "server")
    if hasattr(gc, "mem_free"):
        # parsed, these lists took ~150 KB; refused first, the frame costs next to nothing
        assert before - gc.mem_free() < 4096


def test_brackets_inside_strings_do_not_count():
    label = "[{" * 16  # 32 brackets in a string, 83 real arrays and objects: 115 in all
    lists = "[" + "[]," * 80 + "[]]"
    frame = '{"type":"cpu","value":1,"label":"' + label + '","x":' + lists + "}"
    assert protocol.decode(frame, "server")["label"] == label


def test_escaped_quotes_and_backslashes_keep_strings_apart_from_brackets():
    # a string of 20 escaped quotes among 40 brackets, ending in an escaped backslash; then
    # 71 real lists: 112 brackets in the text, 72 arrays and objects
    note = '"[{' * 20 + "\\"
    frame = json.dumps({"type": "cpu", "value": 1, "note": note, "x": [[]] * 70})
    assert frame.count("[") + frame.count("{") == 112
    assert protocol.decode(frame, "server")["value"] == 1
    many = json.dumps({"type": "cpu", "value": 1, "note": note, "x": [[]] * 100})
    with raises(protocol.ProtocolError, "100"):
        protocol.decode(many, "server")


def test_control_characters_are_refused_in_every_string():
    for bad in ("\x1b[2J", "a\x00", "\x07", "\x7f", "\x85", "\x9b31m"):
        with raises(protocol.ProtocolError, "character"):
            protocol.decode(json.dumps({"type": "park", "reason": bad}), "server")
    assert protocol.decode(json.dumps({"type": "park", "reason": "a\xa0b"}), "server")


def test_needle_keys_are_kept_in_the_normal_form():
    got = protocol.decode('{"type":"vram","value":5,"needle":2}', "server")
    assert got == {"type": "vram", "value": 5.0, "needle": 2}
    got = protocol.decode('{"type":"calibration","points":[[0,0],[100,1]],"needle":4}', "server")
    assert got["needle"] == 4
    for bad in ("0", "5", '"1"', "1.0", "true", "null"):
        with raises(protocol.ProtocolError, "needle"):
            protocol.decode('{"type":"sweep","needle":' + bad + "}", "server")


def _hostile_frames(start):
    """Frames from a stranger, each of characters the meter has never met: an error's reason,
    a label, a metric id that starts with one, a frame of brackets, a pairing nonce."""
    text = new_characters(start, 150)
    return [
        json.dumps({"type": "error", "reason": text}),
        json.dumps({"type": "cpu", "value": 1, "label": text[:32]}),
        json.dumps({"type": text[:1] + "x", "value": 1}),
        json.dumps({"type": "cpu", "value": 1, "pad": [[]] * 101, "x": text}),
        json.dumps({"type": "hello", "proto": 2, "server": "pc", "nonce": text[:32]}),
    ]


def test_text_from_the_network_leaves_nothing_in_the_heap():
    # MicroPython interns each character that iterating or indexing a str yields, and those
    # stay in the heap for good: a peer sending ever new characters would fill it
    def decode_all(start):
        for frame in _hostile_frames(start):
            try:
                protocol.decode(frame, "server")
            except protocol.ProtocolError:
                pass

    grown = heap_kept(decode_all)
    assert grown < 1024, "%d bytes stayed in the heap after 5 rounds" % grown
