"""The whole firmware under MicroPython on a radio that behaves like the ESP32's.

The simulated radio (firmware_micropython/hal/simradio.py) reads the air from a scenario
file; the tests rewrite it as a person would unplug or reboot the router. Each test ends
with the device linked to a real websockets PC, or in its setup portal saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import scaled
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.firmware.fake_pc import PC, Link
from tests.firmware.portal_sim import firmware_constant, free_port

# a real board's timings: 1-3 s to join, the last failure reported for a second after
# connect(), 2.5 s to scan, a vanished router noticed after a second of lost beacons
REAL = {"join_s": [1, 3], "stale_s": 1.0, "scan_s": 2.5, "beacon_loss_s": 1}
HOME = {"ssid": "SysboyHome", "channel": 11, "rssi": -52, "password": "hunter2hunter2"}
CAFE = {"ssid": "Cafe Guest", "channel": 1, "rssi": -80, "password": ""}


class Air:
    """The scenario file the simulated radio reads: the router and the networks around."""

    def __init__(self, path: Path, **world: Any) -> None:
        self.path = path
        self.world = {**REAL, "router": "up", "networks": [HOME, CAFE], **world}
        self._write()

    def set(self, **changes: Any) -> None:
        """Change the air now (written whole, then renamed: the radio never reads half)."""
        self.world.update(changes)
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.world))
        os.replace(tmp, self.path)


def run(body: Any) -> None:
    asyncio.run(asyncio.wait_for(body(), scaled(180)))


def count(device: SimDevice, text: str) -> int:
    return sum(text in line for line in device.lines)


def first(device: SimDevice, text: str) -> int:
    """The index of the first line holding `text` (AssertionError if there is none)."""
    for i, line in enumerate(device.lines):
        if text in line:
            return i
    raise AssertionError(f"no line with {text!r}:\n{device.output()}")


async def linked(pc: PC, device: SimDevice, value: float, timeout: float = 60) -> Link:
    """The device links to the PC and its needle shows `value` percent; the link stays up."""
    link = await pc.link(timeout=timeout)
    await link.greet()
    await link.send({"type": "cpu", "value": value})
    await device.needle_at(value / 100)
    return link


def portal_env(air: Air) -> dict[str, str]:
    return {
        "SYSBOY_SIM_RADIO": str(air.path),
        "SYSBOY_PORTAL_HTTP_PORT": str(free_port(socket.SOCK_STREAM)),
        "SYSBOY_PORTAL_DNS_PORT": str(free_port(socket.SOCK_DGRAM)),
    }


async def http(env: dict[str, str], request: str) -> str:
    """One request to the simulator's portal, as the phone on the setup network sends it."""
    port = int(env["SYSBOY_PORTAL_HTTP_PORT"])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request.replace("HOST", f"127.0.0.1:{port}").encode())
    reply = await asyncio.wait_for(reader.read(), scaled(20))
    writer.close()
    return reply.decode("utf-8", "replace")


def get(path: str) -> str:
    return f"GET {path} HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n"


def post(body: str) -> str:
    return (
        "POST /join HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    )


async def portal_open(device: SimDevice, timeout: float = 90) -> None:
    await device.wait_for(lambda: count(device, "portal http") > 0, "the portal", timeout)


def test_a_slow_join_after_a_failed_one_ends_linked(tmp_path: Path) -> None:
    # status() keeps saying NO_AP_FOUND for a second after connect(): believing it at once
    # gave up on every join that followed a failed one
    async def body() -> None:
        air = Air(tmp_path / "air.json", router="off")
        pc = await PC().start()
        folder = tmp_path / "device"
        firmware_settings(folder, server=f"127.0.0.1:{pc.port}", smoothing_ms=0)
        async with SimDevice(folder, SYSBOY_SIM_RADIO=str(air.path)) as device:
            failed = "radio join 'SysboyHome' failed: 201"
            await device.wait_for(lambda: count(device, failed) > 0, "a failed join", 30)
            air.set(router="up")
            await linked(pc, device, 50)
            # every "not found" the firmware reported was one the radio really gave
            assert count(device, "wifi: No network named") == count(device, failed)
            assert first(device, "radio joined") > first(device, failed)
            assert count(device, "radio pm 0") > 0  # power save off by default
        await pc.stop()

    run(body)


@pytest.mark.parametrize(
    ("shown", "words"),
    [(202, "was not accepted"), (15, "the password is wrong, or the signal is too weak")],
    ids=["auth-fail", "handshake-timeout"],
)
def test_a_wrong_password_opens_the_portal_saying_why(
    tmp_path: Path, shown: int, words: str
) -> None:
    async def body() -> None:
        router = {**HOME, "password": "changed-on-the-router"}
        air = Air(tmp_path / "air.json", networks=[router, CAFE], wrong_password=shown)
        pc = await PC().start()
        folder = tmp_path / "device"
        firmware_settings(folder, server=f"127.0.0.1:{pc.port}")
        env = portal_env(air)
        # refusals must go on for minutes before the portal opens; here for 4 s
        async with SimDevice(folder, SYSBOY_WIFI_PORTAL_AFTER_S="4", **env) as device:
            await portal_open(device)
            page = await http(env, get("/"))
            assert words in " ".join(page.split()), page
            assert count(device, f"radio join 'SysboyHome' failed: {shown}") >= 3
            # the access point is on the saved network's channel: a join does not move it
            channels = [line for line in device.lines if line.startswith("radio ap on channel")]
            assert channels == ["radio ap on channel 11"], device.output()
            assert count(device, "clients dropped") == 0
            assert json.loads((folder / "sysboy.json").read_text())["ssid"] == "SysboyHome"
            assert device.needle == 0.0
            assert pc.links.empty()
        await pc.stop()

    run(body)


def test_the_saved_network_is_retried_behind_the_portal(tmp_path: Path) -> None:
    # the router's password was changed, then changed back: the device gets in by itself
    async def body() -> None:
        router = {**HOME, "password": "changed-on-the-router"}
        air = Air(tmp_path / "air.json", networks=[router, CAFE])
        pc = await PC().start()
        folder = tmp_path / "device"
        firmware_settings(folder, server=f"127.0.0.1:{pc.port}", smoothing_ms=0)
        env = {**portal_env(air), "SYSBOY_WIFI_PORTAL_AFTER_S": "4", "SYSBOY_PORTAL_RETRY_S": "3"}
        async with SimDevice(folder, **env) as device:
            await portal_open(device)
            air.set(networks=[HOME, CAFE])
            await linked(pc, device, 40)
            assert count(device, "portal: trying the saved network 'SysboyHome' again") >= 1
            assert count(device, "radio ap down") == 1
            # started on the home network's channel, the access point never had to move
            assert count(device, "the access point moved") == 0
        await pc.stop()

    run(body)


def test_a_portal_the_user_asked_for_is_not_closed_by_a_retry(tmp_path: Path) -> None:
    # the button opened it to change the settings: the saved network is not tried behind it
    async def body() -> None:
        air = Air(tmp_path / "air.json")
        pc = await PC().start()
        folder = tmp_path / "device"
        firmware_settings(folder, server=f"127.0.0.1:{pc.port}", smoothing_ms=0)
        env = {**portal_env(air), "SYSBOY_PORTAL_RETRY_S": "1"}
        async with SimDevice(folder, **env) as device:
            link = await linked(pc, device, 50)
            (folder / "button").touch()
            await device.wait_for(lambda: device.led == "portal", "the 5 s hint", timeout=15)
            (folder / "button").unlink()
            await portal_open(device)
            await asyncio.sleep(5)
            assert count(device, "trying the saved network") == 0
            assert "The button was held" in await http(env, get("/"))
            link.end()
        await pc.stop()

    run(body)


def test_a_router_reboot_never_opens_the_portal(tmp_path: Path) -> None:
    async def body() -> None:
        air = Air(tmp_path / "air.json")
        pc = await PC().start()
        folder = tmp_path / "device"
        firmware_settings(folder, server=f"127.0.0.1:{pc.port}", smoothing_ms=0)
        async with SimDevice(folder, SYSBOY_SIM_RADIO=str(air.path)) as device:
            first_link = await linked(pc, device, 50)
            air.set(router="off")
            # the radio's lost link is noticed, not 30 s of silence from the PC
            await device.wait_for(lambda: count(device, "link: Wi-Fi lost") > 0, "Wi-Fi lost")
            await device.needle_at(0.0)
            await asyncio.wait_for(first_link.ws.wait_closed(), scaled(10))
            assert pc.links.empty()
            off = "radio join 'SysboyHome' failed: 201"
            await device.wait_for(lambda: count(device, off) > 0, "a join while it is off")
            # booting: the router refuses joins (AUTH_FAIL) for a while, as real ones do
            air.set(router="booting")
            refused = "radio join 'SysboyHome' failed: 202"
            await device.wait_for(lambda: count(device, refused) >= 3, "refusals", 90)
            air.set(router="up")
            await linked(pc, device, 30, timeout=90)
            assert count(device, "no word from the PC") == 0
            assert not [line for line in device.lines if line.startswith("portal")]
            assert "portal" not in device.leds
        await pc.stop()

    run(body)


def test_the_portal_says_what_happens_next_before_the_radio_moves(tmp_path: Path) -> None:
    async def body() -> None:
        air = Air(tmp_path / "air.json")
        pc = await PC().start()
        folder = tmp_path / "device"
        # paired over USB with no Wi-Fi settings, so the portal opens
        firmware_settings(folder, ssid="", password="")
        env = portal_env(air)
        async with SimDevice(folder, **env) as device:
            await portal_open(device)
            # the first scan (2.5 s) ran before the access point was up: nobody thrown off
            assert count(device, "clients dropped") == 0
            await asyncio.sleep(firmware_constant("portal.py", "RESCAN_GAP_S"))
            assert "Location: /" in await http(env, get("/scan"))  # the user asks: it drops
            scanned = "clients dropped: the station scanned"
            await device.wait_for(lambda: count(device, scanned) == 1, "a scan", 10)

            found = re.search(r'name="token" value="([0-9a-f]+)"', await http(env, get("/")))
            assert found, "the setup page has no form token"
            form = f"ssid=SysboyHome&password=hunter2hunter2&server=127.0.0.1%3A{pc.port}"
            form += "&token=" + found.group(1)
            assert "Location: /result" in await http(env, post(form))
            await asyncio.sleep(1)
            assert count(device, "radio connect") == 0, "the join began before the page"
            page = " ".join((await http(env, get("/result"))).split())
            assert "Joining" in page and "may drop for a few seconds" in page, page
            await device.wait_for(lambda: count(device, "radio joined") > 0, "the join", 30)
            # the access point went to the chosen network's channel first, then the join
            moved = first(device, "clients dropped: the access point changed channel")
            assert moved < first(device, "radio connect 'SysboyHome'")
            assert count(device, "the access point moved") == 0
            await linked(pc, device, 60)
        await pc.stop()

    run(body)


def test_power_save_follows_its_setting(tmp_path: Path) -> None:
    async def body() -> None:
        air = Air(tmp_path / "air.json")
        pc = await PC().start()
        folder = tmp_path / "device"
        firmware_settings(folder, server=f"127.0.0.1:{pc.port}", wifi_power_save=True)
        async with SimDevice(folder, SYSBOY_SIM_RADIO=str(air.path)) as device:
            await linked(pc, device, 20)
            assert count(device, "radio pm 1") > 0 and count(device, "radio pm 0") == 0
        await pc.stop()

    run(body)
