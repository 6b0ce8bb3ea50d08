"""The firmware's DNS codec against dnspython, a real resolver library (CPython side)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from tests.firmware.upy import FIRMWARE


def _load(name: str) -> ModuleType:
    # by file, under another name: the firmware's `dns` would shadow dnspython's
    spec = importlib.util.spec_from_file_location("fw_" + name, FIRMWARE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fw = _load("dns")
portal = _load("portaldns")  # the portal's answer


@pytest.mark.parametrize("use_edns", [False, True])
def test_resolver_a_query_gets_the_portal_ip(use_edns: bool) -> None:
    query = dns.message.make_query("detectportal.firefox.com", "A", use_edns=use_edns)
    reply = dns.message.from_wire(portal.portal_reply(query.to_wire(), "192.168.4.1"))
    assert reply.id == query.id
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.QR
    assert query.is_response(reply)
    (rrset,) = reply.answer
    assert rrset.rdtype == dns.rdatatype.A
    assert rrset.ttl == 60
    assert [r.address for r in rrset] == ["192.168.4.1"]


def test_resolver_aaaa_query_gets_empty_noerror() -> None:
    query = dns.message.make_query("example.com", "AAAA")
    reply = dns.message.from_wire(portal.portal_reply(query.to_wire(), "192.168.4.1"))
    assert query.is_response(reply)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []


def test_compressed_mdns_style_reply_reads_like_dnspython_wrote_it() -> None:
    service = "_sysboy._tcp.local."
    instance = "Desk\\ PC." + service
    reply = dns.message.make_response(dns.message.make_query(service, "PTR"))
    reply.answer.append(dns.rrset.from_text(service, 120, "IN", "PTR", instance))
    reply.additional.append(
        dns.rrset.from_text(instance, 120, "IN", "SRV", "0 5 8765 deskpc.local.")
    )
    reply.additional.append(
        dns.rrset.from_text(instance, 120, "IN", "TXT", '"proto=1" "path=/device" "id=abc"')
    )
    reply.additional.append(dns.rrset.from_text("deskpc.local.", 120, "IN", "A", "10.1.2.3"))
    wire = reply.to_wire()  # dnspython compresses every name it can
    parsed = fw.parse(wire)
    assert parsed["answers"][0]["data"] == "Desk PC._sysboy._tcp.local"
    srv, txt, a = parsed["additional"]
    assert srv["data"] == (0, 5, 8765, "deskpc.local")
    assert txt["data"] == [b"proto=1", b"path=/device", b"id=abc"]
    assert a["name"] == "deskpc.local" and a["data"] == "10.1.2.3"
    assert len(wire) < 200  # names really were compressed


def test_firmware_query_is_a_valid_dns_message() -> None:
    wire = fw.build_query(0x1234, "_sysboy._tcp.local", fw._TYPE_PTR)
    message = dns.message.from_wire(wire)
    assert message.id == 0x1234
    (question,) = message.question
    assert question.name.to_text() == "_sysboy._tcp.local."
    assert question.rdtype == dns.rdatatype.PTR
