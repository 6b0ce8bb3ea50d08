"""A hostile "PC" that does not know the pairing key, against the real firmware (issue 11).

The meter is paired (key and PC id, as a USB deploy writes them) and finds its PC by an mDNS
legacy query. A stranger on 127.0.0.2 answers every query first, naming one of its own
WebSocket servers and copying the real PC's id from its advert; each server speaks protocol
v2 without the key and tries what a v1 attacker did: a calibration of 100 % -> 0.03, a
5,000 ms smoothing and a 3,600 s idle park, a flood of calibrations, raw mode slammed
between 0 and 1.0, samples, and a frame of nested lists. Flash writes are counted by the
kernel (inotify on the simulated flash folder); needle movement is what the sim HAL's
output printed. After the stranger's servers come the real PC's answers, and the meter
links there; a calibration and a sample from the real PC then show both counters working.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rrset
import pytest
from websockets.exceptions import ConnectionClosed

from sysboy_tray import SERVICE_TYPE
from tests.conftest import scaled
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.firmware.fake_pc import PC, TEST_PC, Link
from tests.firmware.flash_watch import FlashWatch, available
from tests.firmware.mdns_responder import Responder
from tests.firmware.stranger_pc import NESTED, barrage, forged, hello

STRANGER = "127.0.0.2"  # a second host on the loopback network

pytestmark = pytest.mark.skipif(not available(), reason="counts flash writes with Linux inotify")


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), scaled(180)))


# name -> the frames the stranger opens with (given the meter's hello), before the barrage
ATTACKS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "no handshake": lambda h: [],
    "hello without a proof": lambda h: [hello(TEST_PC)],
    "forged proof, then its own key": lambda h: forged(h, TEST_PC),
    "nested lists first": lambda h: [NESTED],
}


@dataclass
class Attempt:
    """What one stranger connection saw: the meter's frames and the meter's close code."""

    name: str
    received: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    sent: int = 0  # frames the stranger got out before the meter hung up


async def attack(link: Link, name: str) -> Attempt:
    """Take the meter's hello, then send the attack's frames and the barrage, all at once."""
    attempt = Attempt(name)
    attempt.received.append(await link.recv())
    try:
        for frame in ATTACKS[name](attempt.received[0]) + barrage():
            await link.ws.send(frame)
            attempt.sent += 1
        while True:  # whatever the meter says next (it should only hang up)
            attempt.received.append(await link.recv(timeout=20))
    except ConnectionClosed:
        pass
    await link.ws.wait_closed()
    received = link.ws.protocol.close_rcvd
    attempt.close_code = received.code if received is not None else None
    link.end()
    return attempt


def stranger_first(stranger_ports: list[int], pc_port: int) -> Responder:
    """The stranger's mDNS answers: its next server first, then (from another host) the PC."""
    waiting = list(stranger_ports)

    def answers(query: dns.message.Message) -> list[bytes]:
        first = [answer(query, STRANGER, waiting.pop(0))] if waiting else []
        return [*first, answer(query, "127.0.0.1", pc_port)]

    return Responder(answers, address=STRANGER)


def answer(query: dns.message.Message, address: str, port: int) -> bytes:
    """An answer for the PC `TEST_PC` at `address`:`port` (true or not)."""
    instance = "Desk\\ PC." + SERVICE_TYPE
    host = f"pc-{port}.local."
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    reply.answer.append(dns.rrset.from_text(SERVICE_TYPE, 120, "IN", "PTR", instance))
    reply.additional.append(dns.rrset.from_text(instance, 120, "IN", "SRV", f"0 0 {port} {host}"))
    txt = f'"proto=2" "path=/device" "id={TEST_PC}"'
    reply.additional.append(dns.rrset.from_text(instance, 120, "IN", "TXT", txt))
    reply.additional.append(dns.rrset.from_text(host, 120, "IN", "A", address))
    return reply.to_wire()


def test_a_pc_without_the_key_writes_nothing_moves_nothing_and_is_refused(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        strangers = [await PC().start(host=STRANGER) for _ in ATTACKS]
        pc = await PC().start()
        responder = stranger_first([s.port for s in strangers], pc.port)
        folder = tmp_path / "device"
        config = firmware_settings(folder, smoothing_ms=0)
        before = config.read_bytes()
        flash = FlashWatch(folder).start()
        env = {"SYSBOY_MDNS_ADDR": f"{STRANGER}:{responder.port}"}
        try:
            async with SimDevice(folder, **env) as device:
                started = time.monotonic()
                attempts = []
                for stranger, name in zip(strangers, ATTACKS, strict=True):
                    attempts.append(await attack(await stranger.link(timeout=60), name))
                link = await pc.link(timeout=60)
                # the meter came to its own PC: until now, nothing written, nothing moved
                assert flash.writes() == []
                assert config.read_bytes() == before
                assert device.needles == [0.0]  # the output's one write: 0 at start
                await link.greet()
                linked_s = time.monotonic() - started
                await device.wait_for(
                    lambda: "link: the PC proved our key" in device.lines, "the proven link"
                )

                for attempt in attempts:
                    # the stranger got the meter's hello and nothing more, then a 1008
                    assert [m["type"] for m in attempt.received] == ["hello"], attempt
                    assert attempt.received[0]["pc"] == TEST_PC  # it asked for its own PC
                    assert attempt.close_code == 1008, attempt
                log = "\n".join(device.lines)
                assert "link: refused: 'calibration' came before the PC's hello" in log
                assert log.count("link: 'Desk PC' is not our PC (it did not prove our key)") == 2
                assert "link: bad message before the key was proven: " in log
                assert "paired with" not in log

                # the real PC's commands reach the flash and the needle: both counters work
                await link.send({"type": "cpu", "value": 50})
                await device.needle_at(0.5)
                await link.send({"type": "calibration", "points": [[0, 0], [100, 0.8]]})
                assert (await link.recv_type("ack"))["of"] == "calibration"
                await device.needle_at(0.4)
                await device.wait_for(lambda: bool(flash.writes()), "the calibration's save")
                saved = json.loads(config.read_text())
                assert saved["key"] == json.loads(before)["key"]
                sent = sum(a.sent for a in attempts)
                print(
                    f"\n{len(attempts)} keyless PCs answered first ({sent} frames sent in all): "
                    f"0 flash writes, 0 needle movement; linked to the real PC after "
                    f"{linked_s:.1f} s; one real calibration: {len(flash.writes())} "
                    "filesystem events"
                )
                link.end()
        finally:
            flash.close()
            responder.close()
            for server in [*strangers, pc]:
                await server.stop()

    run(body)
