"""Discovery's choice of server from mDNS replies (the network part is tested from pytest)."""

import struct

import discovery
import dns
from support import FW

SERVICE = "_sysboy._tcp.local"


def _name(text):
    return dns.encode_name(text)


def _rr(name, rtype, data):
    return _name(name) + struct.pack("!HHIH", rtype, 0x8001, 120, len(data)) + data


def _txt(*pairs):
    out = b""
    for pair in pairs:
        out += bytes([len(pair)]) + pair
    return out


def _reply(qid=7, servers=(), extra_a=()):
    """A reply for each (instance, host, port, [ips], txt pairs) in `servers`."""
    answers = []
    additional = []
    for instance, host, port, ips, txt in servers:
        full = instance + "." + SERVICE
        answers.append(_rr(SERVICE, FW.TYPE_PTR, _name(full)))
        additional.append(_rr(full, FW.TYPE_SRV, struct.pack("!HHH", 0, 0, port) + _name(host)))
        additional.append(_rr(full, FW.TYPE_TXT, _txt(*txt)))
        for ip in ips:
            additional.append(_rr(host, FW.TYPE_A, bytes(int(p) for p in ip.split("."))))
    for host, ip in extra_a:
        additional.append(_rr(host, FW.TYPE_A, bytes(int(p) for p in ip.split("."))))
    header = struct.pack("!HHHHHH", qid, 0x8400, 0, len(answers), 0, len(additional))
    return header + b"".join(answers) + b"".join(additional)


TXT = (b"proto=2", b"path=/device", b"id=pc1")


def test_ptr_srv_txt_and_a_make_a_server():
    msg = dns.parse(_reply(servers=[("Desk", "desk.local", 8765, ["192.168.1.20"], TXT)]))
    assert discovery.pick_server(msg) == {
        "host": "192.168.1.20",
        "port": 8765,
        "path": "/device",
        "id": "pc1",
        "name": "Desk",
    }


def test_address_in_own_subnet_is_preferred():
    ips = ["172.17.0.1", "10.0.0.5", "192.168.1.20"]
    msg = dns.parse(_reply(servers=[("Desk", "desk.local", 8765, ips, TXT)]))
    assert discovery.pick_server(msg, own_ip="192.168.1.77")["host"] == "192.168.1.20"
    assert discovery.pick_server(msg, own_ip="10.0.0.9")["host"] == "10.0.0.5"
    assert discovery.pick_server(msg, own_ip="8.8.8.8")["host"] == "172.17.0.1"


def test_server_in_own_subnet_wins_over_the_first():
    msg = dns.parse(
        _reply(
            servers=[
                ("Far", "far.local", 1, ["10.9.9.9"], TXT),
                ("Near", "near.local", 2, ["192.168.1.3"], (b"id=pc2",)),
            ]
        )
    )
    assert discovery.pick_server(msg)["name"] == "Far"
    near = discovery.pick_server(msg, own_ip="192.168.1.50")
    assert near["name"] == "Near" and near["port"] == 2 and near["path"] == "/device"
    assert discovery.pick_server(msg, server_id="pc2")["name"] == "Near"
    assert discovery.pick_server(msg, server_id="nobody") is None


def test_missing_a_record_falls_back_to_the_sender():
    msg = dns.parse(_reply(servers=[("Desk", "desk.local", 8765, [], TXT)]))
    assert discovery.pick_server(msg) is None
    assert discovery.pick_server(msg, sender_ip="192.168.1.9")["host"] == "192.168.1.9"


def test_behind_a_reflector_the_a_record_wins_over_the_sender():
    # the router 10.99.6.1 relays the PC's answer from 10.99.5.1 to the device at 10.99.6.2
    msg = dns.parse(_reply(servers=[("Desk", "desk.local", 8765, ["10.99.5.1"], TXT)]))
    found = discovery.pick_server(msg, own_ip="10.99.6.2", sender_ip="10.99.6.1")
    assert found["host"] == "10.99.5.1"


def test_other_protocol_versions_and_other_services_are_skipped():
    msg = dns.parse(_reply(servers=[("Old", "o.local", 1, ["10.0.0.1"], (b"proto=1",))]))
    assert discovery.pick_server(msg) is None
    other = _reply(servers=[("Desk", "desk.local", 8765, ["10.0.0.1"], TXT)])
    other = other.replace(b"\x07_sysboy", b"\x07_sysbox")
    assert discovery.pick_server(dns.parse(other)) is None


def test_names_match_without_regard_to_case():
    packet = _reply(
        servers=[("Desk", "Desk.Local", 80, [], TXT)], extra_a=[("desk.local", "10.1.1.1")]
    )
    assert discovery.pick_server(dns.parse(packet))["host"] == "10.1.1.1"


def test_reply_to_another_query_or_malformed_is_no_reply():
    good = _reply(qid=7, servers=[("Desk", "desk.local", 8765, ["10.0.0.1"], TXT)])
    assert discovery._answer(good, "10.0.0.1", 7, None, None)["port"] == 8765
    assert discovery._answer(good, "10.0.0.1", 8, None, None) is None
    assert discovery._answer(good[:-3], "10.0.0.1", 7, None, None) is None
    query_not_reply = bytearray(good)
    query_not_reply[2] &= 0x7F
    assert discovery._answer(bytes(query_not_reply), "10.0.0.1", 7, None, None) is None


def test_target_address_and_port():
    assert discovery._target("10.0.0.1") == ("10.0.0.1", 5353)
    assert discovery._target("127.0.0.1:5399") == ("127.0.0.1", 5399)
