"""mDNS: a real zeroconf browser finds the server; a legacy-unicast query gets SRV and A."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rdatatype
import pytest
from zeroconf import (
    DNSAddress,
    DNSIncoming,
    DNSPointer,
    DNSService,
    DNSText,
    ServiceBrowser,
    ServiceListener,
    Zeroconf,
)

from sysboy_tray import SERVICE_TYPE
from sysboy_tray.app import App
from sysboy_tray.config import Paths
from tests.conftest import SettableSource, scaled


@pytest.fixture
def app() -> Iterator[App]:
    running = App(Paths.default(), sources={"cpu": SettableSource("cpu")}, port=0, interval=0.5)
    running.start()
    assert running.advertise_done.wait(scaled(10))
    yield running
    running.stop()


class Found(ServiceListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.append(name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass


def test_zeroconf_browser_resolves_port_and_txt(app: App) -> None:
    zc = Zeroconf()
    try:
        found = Found()
        ServiceBrowser(zc, SERVICE_TYPE, found)
        deadline = time.monotonic() + scaled(10)
        info = None
        while info is None and time.monotonic() < deadline:
            time.sleep(0.05)
            # other Sysboy servers on this machine may be found too: pick ours by port
            for name in list(found.names):
                candidate = zc.get_service_info(SERVICE_TYPE, name, timeout=int(scaled(3000)))
                if candidate is not None and candidate.port == app.port:
                    info = candidate
        assert info is not None, f"the service was not found by browsing ({found.names})"
        assert info.properties[b"proto"] == b"2"
        assert info.properties[b"path"] == b"/device"
        assert info.properties[b"id"] == app.store.settings.install_id.encode()
        assert set(info.parsed_addresses()) == set(app.advertised)
    finally:
        zc.close()


def legacy_unicast_query(target: str, port: int) -> DNSIncoming:
    """Ask like the firmware: a PTR question from an ephemeral port, not 5353.

    Other Sysboy servers on this machine may answer too (each with its own port), so
    replies are read until the one from the server under test arrives.
    """
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.bind(("0.0.0.0", 0))
            sock.settimeout(scaled(0.5))
            query = dns.message.make_query("_sysboy._tcp.local.", dns.rdatatype.PTR)
            query.flags &= ~dns.flags.RD
            sock.sendto(query.to_wire(), (target, 5353))
            while True:
                try:
                    data, _peer = sock.recvfrom(9000)
                except TimeoutError:
                    break
                # mDNS compresses SRV targets (RFC 6762 18.14), which dnspython refuses to
                # read, so the reply is parsed with zeroconf's own reader
                reply = DNSIncoming(data)
                ports = {r.port for r in reply.answers() if isinstance(r, DNSService)}
                if reply.id == query.id and port in ports:
                    return reply
    raise AssertionError(f"no legacy-unicast reply for port {port} from {target}")


def test_legacy_unicast_ptr_query_gets_srv_and_a(app: App) -> None:
    # to the mDNS group, as the device does (a unicast to :5353 reaches only one of the
    # sockets sharing that port, which need not be ours when other servers run here)
    reply = legacy_unicast_query("224.0.0.251", app.port)
    records = reply.answers()
    ptr = [r for r in records if isinstance(r, DNSPointer)]
    assert ptr and ptr[0].alias.endswith(SERVICE_TYPE)
    srv = [r for r in records if isinstance(r, DNSService)]
    assert srv and srv[0].port == app.port
    addresses = {socket.inet_ntoa(r.address) for r in records if isinstance(r, DNSAddress)}
    assert addresses & set(app.advertised)
    txt = b"".join(r.text for r in records if isinstance(r, DNSText))
    assert b"path=/device" in txt
