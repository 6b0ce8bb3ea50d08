"""The RFC 6455 frame codec: encoding, masking, parsing, limits and close payloads."""

import struct

import wsframe as ws
from support import raises

# RFC 6455's opcodes and close codes (the firmware folds its own into its code)
OP_CONT = 0
OP_TEXT = 1
OP_PING = 9
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_BAD_DATA = 1007
CLOSE_TOO_BIG = 1009
MASK = b"\x37\xfa\x21\x3d"


def test_accept_key_matches_the_rfc_example():
    import wsopen  # the opening handshake's module

    assert wsopen.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert wsopen.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_masked_hello_matches_the_rfc_example():
    frame = ws.encode_frame(OP_TEXT, b"Hello", MASK)
    assert frame == b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"
    assert ws.parse_frame(frame) == (True, OP_TEXT, b"Hello", len(frame))


def test_unmasked_frames_and_length_forms_round_trip():
    for size in (0, 1, 125, 126, 127, 1000, 4000, 4096):
        payload = bytes(i % 251 for i in range(size))
        for key in (None, MASK):
            frame = ws.encode_frame(OP_TEXT, payload, key)
            assert ws.parse_frame(frame) == (True, OP_TEXT, payload, len(frame)), size
            header = 2 + (2 if size > 125 else 0) + (4 if key else 0)
            assert len(frame) == header + size


def test_64_bit_length_form_is_read():
    payload = b"y" * 300
    frame = b"\x81\x7f" + struct.pack("!Q", 300) + payload
    assert ws.parse_frame(frame) == (True, OP_TEXT, payload, len(frame))


def test_every_prefix_of_a_frame_is_incomplete():
    for key in (None, MASK):
        frame = ws.encode_frame(OP_TEXT, b"z" * 200, key)
        for cut in range(len(frame)):
            assert ws.parse_frame(frame[:cut]) is None


def test_frames_over_4096_bytes_are_refused_from_the_header():
    with raises(ws.WSError) as info:
        ws.parse_frame(b"\x81\x7e" + struct.pack("!H", 4097))
    assert info.value.code == CLOSE_TOO_BIG
    with raises(ws.WSError):
        ws.parse_frame(b"\x81\x7f" + struct.pack("!Q", 1 << 63))
    with raises(ws.WSError):
        ws.encode_frame(OP_TEXT, b"x" * 4097, MASK)


def test_protocol_violations_are_refused_with_1002():
    bad = (
        b"\xc1\x00",  # RSV1
        b"\xa1\x00",  # RSV2
        b"\x83\x00",  # opcode 3
        b"\x8b\x00",  # opcode 11
        b"\x09\x00",  # ping not final
        b"\x89\x7e\x00\x7e" + b"x" * 126,  # ping over 125 bytes
    )
    for frame in bad:
        with raises(ws.WSError) as info:
            ws.parse_frame(frame)
        assert info.value.code == CLOSE_PROTOCOL_ERROR, repr(frame)


def test_parser_takes_frames_split_anywhere():
    stream = (
        ws.encode_frame(OP_TEXT, b'{"type":"cpu","value":1}', None)
        + ws.encode_frame(OP_PING, b"p", None)
        + ws.encode_frame(OP_TEXT, b"a" * 3000, None, fin=False)
        + ws.encode_frame(OP_CONT, b"b", None)
    )
    for chunk in (1, 2, 3, 7, 100, 5000):
        parser = ws.FrameParser()
        got = []
        for i in range(0, len(stream), chunk):
            parser.feed(stream[i : i + chunk])
            frame = parser.next()
            while frame is not None:
                got.append((frame[0], frame[1], bytes(frame[2])))
                frame = parser.next()
        assert got == [
            (True, OP_TEXT, b'{"type":"cpu","value":1}'),
            (True, OP_PING, b"p"),
            (False, OP_TEXT, b"a" * 3000),
            (True, OP_CONT, b"b"),
        ], chunk


def test_parser_keeps_going_over_many_buffers():
    parser = ws.FrameParser()
    frame = ws.encode_frame(OP_TEXT, b"x" * 1000, None)
    for i in range(50):
        data = frame[: 1 + i % 7]
        rest = frame[len(data) :]
        parser.feed(data)
        assert parser.next() is None
        parser.feed(rest)
        assert bytes(parser.next()[2]) == b"x" * 1000


def test_parser_refuses_masked_frames():
    parser = ws.FrameParser()
    parser.feed(ws.encode_frame(OP_TEXT, b"hi", MASK))
    with raises(ws.WSError, "masked"):
        parser.next()


def test_close_payloads():
    assert ws.close_payload(1000) == b"\x03\xe8"
    assert ws.parse_close(ws.close_payload(1001, "bye")) == (1001, "bye")
    assert ws.parse_close(b"") == (1005, "")
    assert len(ws.close_payload(1000, "x" * 200)) == 125
    for bad in (b"\x03", b"\x03\xed", b"\x00\x00", b"\x0b\xb7", b"\x13\x88"):
        with raises(ws.WSError):
            ws.parse_close(bad)
    with raises(ws.WSError) as info:
        ws.parse_close(b"\x03\xe8\xff")
    assert info.value.code == CLOSE_BAD_DATA
    assert ws.parse_close(b"\x0f\xa0") == (4000, "")


def test_close_reasons_that_are_not_utf8_are_1007():
    # overlong, surrogate, above U+10FFFF: MicroPython's str() alone would take them
    for bad in (b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
        with raises(ws.WSError) as info:
            ws.parse_close(b"\x03\xe8bye " + bad)
        assert info.value.code == CLOSE_BAD_DATA
    assert ws.parse_close(b"\x03\xe8" + "\u00e9".encode()) == (1000, "\u00e9")


def test_ws_error_is_a_value_error():
    assert issubclass(ws.WSError, ValueError)
    assert ws.WSError("x").code == 1002
