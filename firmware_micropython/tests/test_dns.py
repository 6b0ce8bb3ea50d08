"""The DNS codec: queries, compressed answers, hostile packets, the portal's replies."""

import random
import struct

import dns
import portaldns
from support import FW, raises

SERVICE = "_sysboy._tcp.local"


def _rr(name_wire, rtype, data, rclass=1, ttl=120):
    return name_wire + struct.pack("!HHIH", rtype, rclass, ttl, len(data)) + data


def _response():
    """An mDNS-style answer to a PTR query, with every name compressed where it can be."""
    header = struct.pack("!HHHHHH", 0x1234, 0x8400, 1, 1, 0, 3)
    question = dns.encode_name(SERVICE) + struct.pack("!HH", FW.TYPE_PTR, 1)
    packet = bytearray(header + question)
    # PTR data: "Desk PC" + pointer to the service name at offset 12
    instance_at = len(packet) + 12  # after the answer's name pointer and fixed fields
    ptr_data = bytes([7]) + b"Desk PC" + b"\xc0\x0c"
    packet += _rr(b"\xc0\x0c", FW.TYPE_PTR, ptr_data)
    assert packet[instance_at : instance_at + 8] == bytes([7]) + b"Desk PC"
    instance = struct.pack("!H", 0xC000 | instance_at)
    host_at = len(packet) + 2 + 10 + 6
    srv_data = struct.pack("!HHH", 0, 0, 8765) + bytes([6]) + b"deskpc" + b"\xc0\x19"
    packet += _rr(instance, FW.TYPE_SRV, srv_data, rclass=0x8001)
    txt = bytes([7]) + b"proto=1" + bytes([12]) + b"path=/device" + bytes([6]) + b"id=abc"
    packet += _rr(instance, FW.TYPE_TXT, txt)
    packet += _rr(struct.pack("!H", 0xC000 | host_at), FW.TYPE_A, bytes([192, 168, 1, 20]))
    return bytes(packet)


def test_query_round_trips():
    query = dns.build_query(0xBEEF, SERVICE, FW.TYPE_PTR)
    msg = dns.parse(query)
    assert msg["id"] == 0xBEEF
    assert msg["flags"] == 0
    assert msg["questions"] == [(SERVICE, FW.TYPE_PTR, 1)]
    assert msg["answers"] == [] and msg["additional"] == []
    assert dns.build_query(1, SERVICE + ".", FW.TYPE_PTR)[2:] == query[2:]


def test_query_refuses_bad_names():
    for bad in ("a..local", "x" * 64 + ".local", ".local", ("a" * 60 + ".") * 5 + "local"):
        with raises(dns.DNSError):
            dns.build_query(1, bad, FW.TYPE_A)


def test_compressed_response_is_read_in_full():
    msg = dns.parse(_response())
    assert msg["id"] == 0x1234
    assert msg["questions"] == [(SERVICE, FW.TYPE_PTR, 1)]
    (ptr,) = msg["answers"]
    assert ptr == {
        "name": SERVICE,
        "type": FW.TYPE_PTR,
        "class": 1,
        "ttl": 120,
        "data": "Desk PC." + SERVICE,
    }
    srv, txt, a = msg["additional"]
    assert srv["name"] == "Desk PC." + SERVICE
    assert srv["class"] == 1  # cache-flush bit dropped
    assert srv["data"] == (0, 0, 8765, "deskpc.local")
    assert txt["data"] == [b"proto=1", b"path=/device", b"id=abc"]
    assert a["name"] == "deskpc.local"
    assert a["data"] == "192.168.1.20"
    assert msg["authority"] == []


def test_every_truncation_is_refused():
    packet = _response()
    for cut in range(len(packet)):
        with raises(dns.DNSError):
            dns.parse(packet[:cut])


def test_pointer_to_itself_is_a_loop():
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    with raises(dns.DNSError, "loop"):
        dns.parse(header + b"\xc0\x0c" + b"\x00\x01\x00\x01")


def test_pointers_chasing_each_other_are_a_loop():
    # name at 12: label "a" then a pointer to 17; at 17: a pointer back to 12
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    body = b"\x01a\xc0\x11" + b"\x00" + b"\xc0\x0c"
    with raises(dns.DNSError, "loop"):
        dns.read_name(header + body, 12)
    with raises(dns.DNSError, "loop"):
        dns.read_name(header + body, 17)


def test_pointer_past_the_end_is_refused():
    packet = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x01a\xc0"
    with raises(dns.DNSError):
        dns.read_name(packet, 12)


def test_bad_label_types_are_refused():
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    for first in (0x40, 0x80, 0x41):
        with raises(dns.DNSError, "label"):
            dns.parse(header + bytes([first]) + b"abc\x00\x00\x01\x00\x01")


def test_label_not_utf8_is_refused():
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    with raises(dns.DNSError, "UTF-8"):
        dns.parse(header + b"\x02\xff\xfe\x00\x00\x01\x00\x01")


def test_name_over_255_bytes_through_pointers_is_refused():
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    # 5 labels of 60 bytes, each name pointing back at the one before it
    body = bytearray(b"\x3c" + b"x" * 60 + b"\x00")
    starts = [12]
    for _ in range(4):
        starts.append(12 + len(body))
        body += b"\x3c" + b"y" * 60 + struct.pack("!H", 0xC000 | starts[-2])
    assert dns.read_name(header + body, starts[3])[0].count(".") == 3  # 244 bytes: fine
    with raises(dns.DNSError, "255"):
        dns.read_name(header + body, starts[4])


def test_bad_record_data_is_refused():
    header = struct.pack("!HHHHHH", 1, 0x8400, 0, 1, 0, 0)
    cases = (
        _rr(b"\x00", FW.TYPE_A, b"\x01\x02\x03"),
        _rr(b"\x00", FW.TYPE_TXT, b"\x05abc"),
        _rr(b"\x00", FW.TYPE_SRV, b"\x00\x00\x00"),
        _rr(b"\x00", FW.TYPE_PTR, b"\x01a"),  # name runs out of the packet
        # the PTR name's last byte lies outside its 2-byte record
        b"\x00" + struct.pack("!HHIH", FW.TYPE_PTR, 1, 0, 2) + b"\x01a\x00",
    )
    for record in cases:
        with raises(dns.DNSError):
            dns.parse(header + record)


def test_other_types_keep_raw_bytes():
    header = struct.pack("!HHHHHH", 7, 0x8400, 0, 2, 0, 0)
    v6 = bytes(range(16))
    packet = header + _rr(b"\x00", FW.TYPE_AAAA, v6) + _rr(b"\x00", 99, b"xyz")
    answers = dns.parse(packet)["answers"]
    assert answers[0]["data"] == v6 and answers[0]["name"] == ""
    assert answers[1]["data"] == b"xyz"


def test_counts_larger_than_the_packet_are_refused_at_once():
    header = struct.pack("!HHHHHH", 1, 0x8400, 0, 65535, 65535, 65535)
    with raises(dns.DNSError, "counts"):
        dns.parse(header + b"\x00" * 40)


def _parses(data):
    try:
        dns.parse(data)
    except dns.DNSError:
        return False
    return True


def test_random_garbage_only_ever_raises_dns_error():
    # any other exception escapes and fails the test
    random.seed(7)
    good = _response()
    outcomes = set()
    for _ in range(400):
        data = bytearray(good)
        for _ in range(random.randint(1, 6)):
            data[random.randint(0, len(data) - 1)] = random.randint(0, 255)
        outcomes.add(_parses(bytes(data)))
    for _ in range(200):
        outcomes.add(_parses(bytes(random.randint(0, 255) for _ in range(random.randint(0, 80)))))
    assert outcomes == {True, False}


# -- the captive portal's answers ---------------------------------------------------------


def test_portal_answers_a_with_the_ap_ip():
    query = dns.build_query(0x4242, "connectivitycheck.gstatic.com", FW.TYPE_A, flags=0x0100)
    reply = portaldns.portal_reply(query, "192.168.4.1")
    msg = dns.parse(reply)
    assert msg["id"] == 0x4242
    assert msg["flags"] & 0x8000  # a response
    assert msg["flags"] & 0x0100  # recursion desired, copied
    assert msg["flags"] & 0x000F == 0  # NOERROR
    assert msg["questions"] == [("connectivitycheck.gstatic.com", FW.TYPE_A, 1)]
    assert msg["answers"] == [
        {
            "name": "connectivitycheck.gstatic.com",
            "type": FW.TYPE_A,
            "class": 1,
            "ttl": 60,
            "data": "192.168.4.1",
        }
    ]


def test_portal_gives_aaaa_and_others_an_empty_noerror():
    for qtype in (FW.TYPE_AAAA, FW.TYPE_TXT, FW.TYPE_SRV, 65):
        reply = portaldns.portal_reply(dns.build_query(9, "example.com", qtype), "10.0.0.1")
        msg = dns.parse(reply)
        assert msg["id"] == 9
        assert msg["flags"] & 0x8000 and msg["flags"] & 0x000F == 0
        assert msg["questions"] == [("example.com", qtype, 1)]
        assert msg["answers"] == []


def test_portal_keeps_the_question_as_asked():
    reply = portaldns.portal_reply(dns.build_query(3, "CaptivE.Apple.COM", FW.TYPE_A), "1.2.3.4")
    assert dns.parse(reply)["answers"][0]["name"] == "CaptivE.Apple.COM"


def test_portal_answers_queries_with_an_edns_record():
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)
    query = bytearray(dns.build_query(5, "example.com", FW.TYPE_A) + opt)
    query[11] = 1  # ARCOUNT
    msg = dns.parse(portaldns.portal_reply(bytes(query), "192.168.4.1"))
    assert msg["answers"][0]["data"] == "192.168.4.1"


def test_portal_drops_what_is_not_a_standard_query():
    good = dns.build_query(1, "example.com", FW.TYPE_A)
    as_response = bytearray(good)
    as_response[2] |= 0x80
    notify = bytearray(good)
    notify[2] |= 4 << 3  # opcode NOTIFY
    two_questions = bytearray(good)
    two_questions[5] = 2
    no_question = bytearray(good)
    no_question[5] = 0
    looped = good[:12] + b"\xc0\x0c\x00\x01\x00\x01"
    bad_label = good[:12] + b"\x80abc\x00\x00\x01\x00\x01"
    for packet in (
        b"",
        good[:11],
        good[:-1],
        good[:14],
        bytes(as_response),
        bytes(notify),
        bytes(two_questions),
        bytes(no_question),
        looped,
        bad_label,
    ):
        assert portaldns.portal_reply(packet, "192.168.4.1") is None, repr(packet)


def test_portal_refuses_a_bad_ip_setting():
    query = dns.build_query(1, "example.com", FW.TYPE_A)
    for bad in ("192.168.4", "192.168.4.300", "a.b.c.d", ""):
        with raises(portaldns.DNSError):
            portaldns.portal_reply(query, bad)
