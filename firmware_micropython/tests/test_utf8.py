"""Strict UTF-8 on both runtimes: MicroPython's own str() takes what RFC 3629 forbids."""

import utf8
from support import raises

# Each sequence: an overlong form, a surrogate, or a code point above U+10FFFF.
INVALID = (
    b"\xc0\xaf",  # "/" in two bytes
    b"\xc1\xbf",
    b"\xe0\x80\xaf",  # "/" in three bytes
    b"\xe0\x9f\xbf",  # U+07FF in three bytes
    b"\xf0\x80\x80\xaf",  # "/" in four bytes
    b"\xf0\x8f\xbf\xbf",  # U+FFFF in four bytes
    b"\xed\xa0\x80",  # U+D800, the first surrogate
    b"\xed\xbf\xbf",  # U+DFFF, the last
    b"\xed\xa0\xbd\xed\xb8\x80",  # a CESU-8 surrogate pair
    b"\xf4\x90\x80\x80",  # U+110000
    b"\xf5\x80\x80\x80",
    b"\xf7\xbf\xbf\xbf",  # U+1FFFFF
)
BROKEN = (b"\x80", b"a\xbf", b"\xc3", b"\xe2\x82", b"\xf8\x88\x80\x80\x80", b"\xff")
VALID = (
    b"",
    b"plain ascii {}",
    "\u00e9t\u00e9".encode(),
    b"\xc2\x80",  # U+0080, the lowest 2-byte
    b"\xdf\xbf",  # U+07FF
    b"\xe0\xa0\x80",  # U+0800, the lowest 3-byte
    b"\xed\x9f\xbf",  # U+D7FF, just below the surrogates
    b"\xee\x80\x80",  # U+E000, just above them
    b"\xef\xbf\xbf",  # U+FFFF
    b"\xf0\x90\x80\x80",  # U+10000, the lowest 4-byte
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF, the highest
    "Caf\u00e9 \U0001f600 \u20ac".encode(),
)


def test_valid_text_is_decoded_as_the_runtime_does():
    for raw in VALID:
        assert utf8.text(raw) == str(raw, "utf-8"), raw
        assert utf8.text(bytearray(raw)) == str(raw, "utf-8")
        assert utf8.text(memoryview(b"<" + raw + b">")[1:-1]) == str(raw, "utf-8")


def test_overlong_surrogate_and_too_high_are_refused_anywhere_in_the_text():
    for bad in INVALID:
        for raw in (bad, b"ok " + bad, bad + b" ok", "\u00e9".encode() + bad + b"x"):
            with raises(ValueError):
                utf8.text(raw)
            with raises(ValueError):
                utf8.text(memoryview(bytearray(raw)))


def test_broken_sequences_are_refused():
    for raw in BROKEN:
        with raises(ValueError):
            utf8.text(raw)


def test_a_lead_at_the_very_end_is_refused():
    with raises(ValueError):
        utf8.text(b"\xe9t\xc3")
