"""The captive portal's DNS answer: every name is the access point (pure, no sockets).

Kept apart from the full codec (dns.py, which discovery needs): setup mode loads only this.
"""

import struct

from micropython import const

_TYPE_A = const(1)
_TYPE_ANY = const(255)
_CLASS_IN = const(1)
_MAX_NAME = const(255)
_TTL = const(60)


class DNSError(ValueError):
    """A DNS packet or name that cannot be read or written."""


def _ip_bytes(ip):
    parts = ip.split(".")
    try:
        values = bytes(int(p) for p in parts) if len(parts) == 4 else b""
    except ValueError:  # not a number, or over 255
        values = b""
    if len(values) != 4:
        raise DNSError("not an IPv4 address: " + repr(ip))
    return values


def _question_end(buf):
    """Where the one question at offset 12 ends, or -1 if it is truncated, too long, not
    text, or uses a pointer (it would point into the header, which the reply changes)."""
    pos = 12
    while True:
        if pos >= len(buf):
            return -1
        length = buf[pos]
        if not length:
            break
        if length & 0xC0 or pos + 1 + length > len(buf) or pos - 12 + length >= _MAX_NAME:
            return -1
        pos += 1 + length
    try:  # a name must be text, as dns.read_name reads it (length bytes are ASCII)
        str(bytes(buf[12:pos]), "utf-8")
    except ValueError:
        return -1
    return pos + 5 if pos + 5 <= len(buf) else -1


def portal_reply(query_buf, ip):
    """The captive portal's answer to `query_buf`: every A query gets `ip`.

    AAAA and other types get NOERROR with no answer. Returns None (drop it) for
    anything that is not a well-formed standard query with one question.
    """
    address = _ip_bytes(ip)
    if len(query_buf) < 12:
        return None
    qid, flags, qdcount = struct.unpack_from("!HHH", query_buf, 0)
    # Only standard queries (QR=0, opcode 0) with exactly one question are answered.
    end = _question_end(query_buf) if qdcount == 1 and not flags & 0xF800 else -1
    if end < 0:
        return None
    qtype, qclass = struct.unpack_from("!HH", query_buf, end - 4)
    qclass &= 0x7FFF  # mDNS's "unicast response wanted" bit
    answer = qtype in (_TYPE_A, _TYPE_ANY) and qclass in (_CLASS_IN, _TYPE_ANY)
    # QR + AA, RD copied from the query, RCODE 0 (NOERROR).
    header = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100), 1, int(answer), 0, 0)
    question = bytes(query_buf[12:end])
    if not answer:
        return header + question
    # The answer's name points back at the question (offset 12).
    return header + question + struct.pack("!HHHIH", 0xC00C, _TYPE_A, _CLASS_IN, _TTL, 4) + address
