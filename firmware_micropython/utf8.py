"""Strict UTF-8 (RFC 3629) for text from the network: WebSocket messages and form fields.

MicroPython's `str(b, "utf-8")` checks only the shape of each sequence, so it takes
overlong forms, surrogates and code points above U+10FFFF. Each of those starts with a
lead byte whose next byte is out of range; bytes.find looks for those few leads in C.
"""

from micropython import const

# Triples of (lead byte, lowest next byte, highest next byte); a bytes constant costs the
# heap least. Lowest above highest: the lead is never valid.
_LEADS = const(
    b"\xc0\x01\x00\xc1\x01\x00"  # overlong 2-byte forms
    b"\xe0\xa0\xbf"  # overlong 3-byte forms
    b"\xed\x80\x9f"  # surrogates U+D800..U+DFFF
    b"\xf0\x90\xbf"  # overlong 4-byte forms
    b"\xf4\x80\x8f"  # above U+10FFFF
    b"\xf5\x01\x00\xf6\x01\x00\xf7\x01\x00"
)


def text(raw):
    """`raw` (bytes, bytearray or memoryview) as str; ValueError unless it is valid UTF-8."""
    decoded = str(raw, "utf-8")  # ValueError on a broken sequence; strict on CPython
    if len(decoded) == len(raw):
        return decoded  # ASCII only: the usual case costs nothing more
    raw = bytes(raw)
    end = len(raw) - 1
    for i in range(0, len(_LEADS), 3):
        lead = _LEADS[i : i + 1]
        at = raw.find(lead)
        while at >= 0:
            after = raw[at + 1] if at < end else -1
            if not _LEADS[i + 1] <= after <= _LEADS[i + 2]:
                raise ValueError("not valid UTF-8")
            at = raw.find(lead, at + 1)
    return decoded
