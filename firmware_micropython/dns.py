"""Pure DNS codec (RFC 1035 with name compression) for discovery; the portal's DNS answer is
portaldns.py's, which linked mode never loads."""

import struct

from micropython import const

_TYPE_A = const(1)
_TYPE_PTR = const(12)
_TYPE_TXT = const(16)
_TYPE_AAAA = const(28)
_TYPE_SRV = const(33)
_TYPE_ANY = const(255)
_CLASS_IN = const(1)

_HEADER = const("!HHHHHH")
_MAX_NAME = const(255)
_MAX_HOPS = const(32)


class DNSError(ValueError):
    """A DNS packet or name that cannot be read or written."""


def encode_name(name):
    """The wire form of a dotted name (a trailing dot is allowed)."""
    if name.endswith("."):
        name = name[:-1]
    out = bytearray()
    if name:
        for label in name.split("."):
            raw = label.encode("utf-8")
            if not 1 <= len(raw) <= 63:
                raise DNSError("bad label in name " + repr(name))
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > _MAX_NAME:
        raise DNSError("name longer than 255 bytes")
    return bytes(out)


def build_query(qid, name, qtype, qclass=_CLASS_IN, flags=0):
    """One question for `name` of type `qtype`, with message id `qid` (0..65535)."""
    header = struct.pack(_HEADER, qid & 0xFFFF, flags, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", qtype, qclass)


def read_name(buf, offset):
    """Read the (possibly compressed) name at `offset`; return (name, offset after it)."""
    labels = []
    size = 0
    end = -1
    hops = 0
    pos = offset
    while True:
        if pos >= len(buf):
            raise DNSError("truncated name")
        length = buf[pos]
        kind = length & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(buf):
                raise DNSError("truncated name pointer")
            target = ((length & 0x3F) << 8) | buf[pos + 1]
            # Pointers must go back, so a chain of them can never loop.
            if target >= pos or hops >= _MAX_HOPS:
                raise DNSError("name pointer loop")
            if end < 0:
                end = pos + 2
            hops += 1
            pos = target
            continue
        if kind:
            raise DNSError("bad label type")
        if length == 0:
            break
        if pos + 1 + length > len(buf):
            raise DNSError("truncated label")
        size += length + 1
        if size > _MAX_NAME:
            raise DNSError("name longer than 255 bytes")
        try:
            labels.append(str(bytes(buf[pos + 1 : pos + 1 + length]), "utf-8"))
        except ValueError:
            raise DNSError("label is not UTF-8") from None
        pos += 1 + length
    return ".".join(labels), (end if end >= 0 else pos + 1)


def _ipv4(raw):
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


def _rdata(buf, rtype, start, end):
    if rtype == _TYPE_A:
        if end - start != 4:
            raise DNSError("A record is not 4 bytes")
        return _ipv4(buf[start:end])
    if rtype == _TYPE_PTR:
        name, after = read_name(buf, start)
        if after > end:
            raise DNSError("PTR name runs past its record")
        return name
    if rtype == _TYPE_SRV:
        if end - start < 7:
            raise DNSError("SRV record too short")
        priority, weight, port = struct.unpack_from("!HHH", buf, start)
        target, after = read_name(buf, start + 6)
        if after > end:
            raise DNSError("SRV target runs past its record")
        return (priority, weight, port, target)
    if rtype == _TYPE_TXT:
        strings = []
        pos = start
        while pos < end:
            length = buf[pos]
            if pos + 1 + length > end:
                raise DNSError("TXT string runs past its record")
            strings.append(bytes(buf[pos + 1 : pos + 1 + length]))
            pos += 1 + length
        return strings
    return bytes(buf[start:end])


def _question(buf, pos):
    name, pos = read_name(buf, pos)
    if pos + 4 > len(buf):
        raise DNSError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", buf, pos)
    # mDNS uses the top bit of the class for "unicast response wanted".
    return (name, qtype, qclass & 0x7FFF), pos + 4


def _record(buf, pos):
    name, pos = read_name(buf, pos)
    if pos + 10 > len(buf):
        raise DNSError("truncated record")
    rtype, rclass, ttl, rdlength = struct.unpack_from("!HHIH", buf, pos)
    pos += 10
    end = pos + rdlength
    if end > len(buf):
        raise DNSError("truncated record data")
    # mDNS uses the top bit of the class for "cache flush".
    record = {
        "name": name,
        "type": rtype,
        "class": rclass & 0x7FFF,
        "ttl": ttl,
        "data": _rdata(buf, rtype, pos, end),
    }
    return record, end


def parse(buf):
    """Read a whole DNS message into a dict; raises DNSError for anything malformed."""
    if len(buf) < 12:
        raise DNSError("truncated header")
    qid, flags, qdcount, ancount, nscount, arcount = struct.unpack_from(_HEADER, buf, 0)
    # A question takes at least 5 bytes and a record 11: refuse impossible counts early.
    if 12 + 5 * qdcount + 11 * (ancount + nscount + arcount) > len(buf):
        raise DNSError("counts larger than the packet")
    pos = 12
    questions = []
    for _ in range(qdcount):
        question, pos = _question(buf, pos)
        questions.append(question)
    sections = []
    for count in (ancount, nscount, arcount):
        records = []
        for _ in range(count):
            record, pos = _record(buf, pos)
            records.append(record)
        sections.append(records)
    return {
        "id": qid,
        "flags": flags,
        "questions": questions,
        "answers": sections[0],
        "authority": sections[1],
        "additional": sections[2],
    }
