"""The firmware's discovery under MicroPython: real UDP, a hand-made responder, real zeroconf."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import pytest
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from sysboy_tray import SERVICE_TYPE
from sysboy_tray.advertise import lan_addresses
from tests.conftest import scaled
from tests.firmware.mdns_responder import Answer, Responder
from tests.firmware.upy import micropython

PROBE = Path(__file__).parent / "discovery_probe.py"


def run_probe(
    timeout: float,
    rounds: int = 1,
    own_ip: str = "-",
    mdns_addr: str = "-",
    server_id: str = "-",
    env: dict[str, str] | None = None,
) -> list[object]:
    binary = micropython()
    assert binary, "the micropython binary is missing"
    args = [binary, str(PROBE), str(timeout), str(rounds), own_ip, mdns_addr, server_id]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=scaled(30) + timeout * rounds,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def responder_factory() -> Iterator[Callable[[Answer], Responder]]:
    made: list[Responder] = []

    def make(answer: Answer) -> Responder:
        made.append(Responder(answer))
        return made[-1]

    yield make
    for responder in made:
        responder.close()


def reply_to(query: dns.message.Message, ips: list[str], port: int = 8765) -> bytes:
    instance = "Desk\\ PC." + SERVICE_TYPE
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    reply.answer.append(dns.rrset.from_text(SERVICE_TYPE, 120, "IN", "PTR", instance))
    reply.additional.append(
        dns.rrset.from_text(instance, 120, "IN", "SRV", f"0 0 {port} deskpc.local.")
    )
    reply.additional.append(
        dns.rrset.from_text(instance, 120, "IN", "TXT", '"proto=2" "path=/device" "id=abc"')
    )
    reply.additional.append(dns.rrset.from_text("deskpc.local.", 120, "IN", "A", *ips))
    return reply.to_wire()


def test_legacy_query_from_an_ephemeral_port_gets_the_server(
    responder_factory: Callable[[Answer], Responder], monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(query: dns.message.Message) -> list[bytes]:
        wrong_id = dns.message.from_wire(reply_to(query, ["10.0.0.9"], port=1))
        wrong_id.id = (query.id + 1) % 65536
        return [b"\x00\x01garbage", wrong_id.to_wire(), reply_to(query, ["192.168.7.20"])]

    responder = responder_factory(answer)
    # the address comes from the environment, as in the simulator
    env = {"SYSBOY_MDNS_ADDR": f"127.0.0.1:{responder.port}"}
    found = run_probe(scaled(3), rounds=2, env=env)
    expected = {
        "host": "192.168.7.20",
        "port": 8765,
        "path": "/device",
        "id": "abc",
        "name": "Desk PC",
    }
    assert found == [expected, expected]
    (first, _), (second, _) = responder.queries
    for query, port in responder.queries:
        assert port not in (5353, responder.port)
        assert not query.flags & dns.flags.QR
        (question,) = query.question
        assert question.name.to_text() == SERVICE_TYPE
        assert question.rdtype == dns.rdatatype.PTR
    assert first.id != second.id  # a fresh id per query


def test_own_subnet_address_is_chosen(responder_factory: Callable[[Answer], Responder]) -> None:
    responder = responder_factory(lambda q: [reply_to(q, ["172.17.0.1", "192.168.7.20"])])
    address = f"127.0.0.1:{responder.port}"
    (near,) = run_probe(scaled(3), own_ip="192.168.7.5", mdns_addr=address)
    (other,) = run_probe(scaled(3), own_ip="172.17.0.9", mdns_addr=address)
    assert isinstance(near, dict) and isinstance(other, dict)
    assert near["host"] == "192.168.7.20"
    assert other["host"] == "172.17.0.1"


def test_only_malformed_replies_mean_no_server(
    responder_factory: Callable[[Answer], Responder],
) -> None:
    def answer(query: dns.message.Message) -> list[bytes]:
        good = reply_to(query, ["192.168.7.20"])
        looped = good[:12] + b"\xc0\x0c" + good[14:]
        return [good[:-5], looped, b""]

    responder = responder_factory(answer)
    assert run_probe(0.5, mdns_addr=f"127.0.0.1:{responder.port}") == [None]
    assert len(responder.queries) == 1


def test_silence_means_no_server(responder_factory: Callable[[Answer], Responder]) -> None:
    responder = responder_factory(lambda q: [])
    assert run_probe(0.3, mdns_addr=f"127.0.0.1:{responder.port}") == [None]


def test_real_zeroconf_answers_the_multicast_query() -> None:
    server_id = uuid.uuid4().hex[:12]
    addresses = lan_addresses()

    async def main() -> list[object]:
        zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        info = ServiceInfo(
            SERVICE_TYPE,
            f"Probe {server_id}.{SERVICE_TYPE}",
            port=43210,
            properties={"proto": "2", "path": "/device", "id": server_id},
            server=f"probe-{server_id}.local.",
            parsed_addresses=addresses,
        )
        await zc.async_register_service(info)
        try:
            # other PCs may answer too: only ours counts, by its id
            return await asyncio.to_thread(run_probe, scaled(5), 1, "-", "-", server_id)
        finally:
            await zc.async_unregister_all_services()
            await zc.async_close()

    (found,) = asyncio.run(main())
    assert isinstance(found, dict)
    assert found["port"] == 43210
    assert found["id"] == server_id
    assert found["path"] == "/device"
    assert found["name"] == f"Probe {server_id}"
    assert found["host"] in addresses


REFLECTOR_RESPONDER = """
import socket, sys
import dns.flags, dns.message, dns.rrset
SERVICE = sys.argv[1]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("10.99.6.1", 5353))
print("ready", flush=True)
data, peer = sock.recvfrom(1500)
query = dns.message.from_wire(data)
instance = "Desk\\\\ PC." + SERVICE
reply = dns.message.make_response(query)
reply.flags |= dns.flags.AA
reply.answer.append(dns.rrset.from_text(SERVICE, 120, "IN", "PTR", instance))
reply.additional.append(dns.rrset.from_text(instance, 120, "IN", "SRV", "0 0 8765 deskpc.local."))
reply.additional.append(dns.rrset.from_text(instance, 120, "IN", "TXT", '"proto=2" "id=abc"'))
reply.additional.append(dns.rrset.from_text("deskpc.local.", 120, "IN", "A", "10.99.5.1"))
sock.sendto(reply.to_wire(), peer)
print("answered", peer[0], flush=True)
"""


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and `ip` (Debian: iproute2): it builds network namespaces",
)
def test_behind_a_reflector_the_device_uses_the_a_record_not_the_router() -> None:
    # An mDNS reflector (avahi, UniFi, OpenWrt) at 10.99.6.1 relays the PC's answer from the
    # other subnet: the datagram comes from the router, its A record names the PC.
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    router, device = f"sysboy-rt-{tag}", f"sysboy-dv-{tag}"
    link = f"sb{uuid.uuid4().hex[:8]}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    responder = None
    try:
        ip("netns", "add", router)
        ip("netns", "add", device)
        ip(
            "link",
            "add",
            link,
            "netns",
            router,
            "type",
            "veth",
            "peer",
            "name",
            "d0",
            "netns",
            device,
        )
        for namespace, name, address in ((router, link, "10.99.6.1"), (device, "d0", "10.99.6.2")):
            ip("-n", namespace, "addr", "add", f"{address}/24", "dev", name)
            ip("-n", namespace, "link", "set", name, "up")
            ip("-n", namespace, "link", "set", "lo", "up")
        responder = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                router,
                sys.executable,
                "-c",
                REFLECTOR_RESPONDER,
                SERVICE_TYPE,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert responder.stdout is not None
        assert responder.stdout.readline().strip() == "ready"
        binary = micropython()
        assert binary, "the micropython binary is missing"
        probe = [binary, str(PROBE), str(scaled(3)), "1", "10.99.6.2", "10.99.6.1:5353", "-"]
        done = subprocess.run(
            ["ip", "netns", "exec", device, *probe],
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        (found,) = [json.loads(line) for line in done.stdout.splitlines()]
        assert responder.stdout.readline().split() == ["answered", "10.99.6.2"]
        assert isinstance(found, dict)
        assert found["host"] == "10.99.5.1"
        assert found["port"] == 8765
    finally:
        if responder is not None:
            responder.kill()
            responder.communicate()
        subprocess.run(["ip", "netns", "del", router], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", device], capture_output=True, check=False)
