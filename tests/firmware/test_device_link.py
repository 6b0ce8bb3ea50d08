"""The whole firmware under MicroPython against a real websockets server playing the PC.

The device is given the PC's address by hand (the portal's "PC address"), so these tests
need no mDNS; the end-to-end test with `sysboy serve` covers discovery.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import scaled
from tests.firmware.device_sim import SimDevice, firmware_settings, settles_within
from tests.firmware.fake_pc import PC
from tests.firmware.portal_sim import free_port

CURVED = [[0.0, 0.0], [50.0, 0.8], [100.0, 1.0]]


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), scaled(120)))


def device_dir(tmp_path: Path, pc: PC, **settings: Any) -> Path:
    folder = tmp_path / "device"
    firmware_settings(folder, server=f"127.0.0.1:{pc.port}", **settings)
    return folder


def saved_settings(folder: Path) -> dict[str, Any]:
    """The device's sysboy.json as it stands."""
    data: dict[str, Any] = json.loads((folder / "sysboy.json").read_text())
    return data


def test_samples_drive_the_needle_through_the_calibration(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc, calibration=CURVED, smoothing_ms=200)
        async with SimDevice(folder) as device:
            link = await pc.link()
            hello = await link.greet()
            assert hello["needles"] == [{"output": "sim", "calibration": CURVED}]
            assert hello["proto"] == 2 and hello["pc"] == "test-pc-1"
            status = await link.recv()
            assert status["type"] == "status" and status["heap"] > 0
            assert "boot: sim micropython, reset cause: power on" in device.lines

            start = len(device.needles)
            await link.send({"type": "cpu", "value": 25})
            await device.needle_at(0.4)  # 25 % on the curved scale
            glide = device.needles[start:]
            assert all(b > a for a, b in itertools.pairwise(glide)), glide
            assert max(glide) <= 0.4  # never past the target
            assert len(glide) > 5  # a glide, not a jump
            assert settles_within(device.needles, start, 0.4, 200)
            assert device.led == "linked"

            start = len(device.needles)
            await link.send({"type": "cpu", "value": 75, "raw": 12.5, "unit": "%", "label": "CPU"})
            await device.needle_at(0.9)
            assert settles_within(device.needles, start, 0.9, 200)
            link.end()
        await pc.stop()

    run(body)


def test_calibration_settings_and_raw_mode_are_obeyed_and_acked(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc, smoothing_ms=100)
        async with SimDevice(folder) as device:
            link = await pc.link()
            await link.greet()
            await link.send({"type": "cpu", "value": 50})
            await device.needle_at(0.5)

            await link.send({"type": "calibration", "points": CURVED})
            assert (await link.recv_type("ack"))["of"] == "calibration"
            await device.needle_at(0.8)  # the same 50 % through the new table
            saved = json.loads((folder / "sysboy.json").read_text())
            assert saved["calibration"] == CURVED  # kept across restarts

            await link.send({"type": "settings", "smoothing_ms": 0, "idle_park_s": 30})
            assert (await link.recv_type("ack"))["of"] == "settings"
            start = len(device.needles)
            await link.send({"type": "cpu", "value": 100})
            await device.needle_at(1.0)
            assert device.needles[start:] == [1.0]  # no smoothing asked for: straight there
            # the flash is written at most once a second: the second change follows
            await device.wait_for(
                lambda: saved_settings(folder).get("idle_park_s") == 30, "settings saved", 5
            )
            assert saved_settings(folder)["smoothing_ms"] == 0

            await link.send({"type": "needle", "value": 0.1234})
            await device.needle_at(0.1234)
            await link.send({"type": "cpu", "value": 0})  # raw mode ignores samples
            await link.send({"type": "needle", "value": 0.5})
            await device.needle_at(0.5)
            await link.send({"type": "needle", "value": None})
            await device.needle_at(0.0)  # back to the calibrated sample (0 %)

            await link.send({"type": "sweep"})
            await device.wait_for(lambda: 1.0 in device.needles[-200:], "a sweep to full scale")
            await device.needle_at(0.0)
            link.end()
        await pc.stop()

    run(body)


def test_bad_messages_get_an_error_and_the_link_stays(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc, smoothing_ms=0)
        async with SimDevice(folder) as device:
            link = await pc.link()
            await link.greet()
            for bad, words in (
                ('{"type": "cpu", "value": "high"}', "number"),
                ("not json", "JSON"),
                ('{"type": "button", "event": "press"}', "server may not send"),
                ('{"type": "calibration", "points": [[0, 0]]}', "2 to 11"),
            ):
                await link.send(bad)
                error = await link.recv_type("error")
                assert words in error["reason"], error
            await link.send({"type": "cpu", "value": 30})
            await device.needle_at(0.3)
            link.end()
        await pc.stop()

    run(body)


def test_park_and_silence_leave_no_stale_value(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc, smoothing_ms=50, idle_park_s=1)
        async with SimDevice(folder) as device:
            link = await pc.link()
            await link.greet()
            await link.send({"type": "cpu", "value": 60})
            await device.needle_at(0.6)
            await link.send({"type": "park", "reason": "sleep"})
            await device.needle_at(0.0)
            await device.wait_for(lambda: device.led == "nodata", "led nodata")

            await link.send({"type": "cpu", "value": 40})
            await device.needle_at(0.4)
            # the PC says nothing more, yet the link is up: parked after idle_park_s
            await device.needle_at(0.0, timeout=10)
            assert device.led == "nodata"
            assert any("no data for 1 s" in line for line in device.lines)
            link.end()
        await pc.stop()

    run(body)


def press_button(folder: Path, hold_s: float) -> Awaitable[None]:
    """Hold the simulator's button (its `button` file exists) for `hold_s`."""

    async def hold() -> None:
        (folder / "button").touch()
        await asyncio.sleep(hold_s)
        (folder / "button").unlink()

    return hold()


def test_lost_pc_parks_then_the_device_reconnects_with_queued_presses(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc, smoothing_ms=50)
        async with SimDevice(folder) as device:
            link = await pc.link()
            await link.greet()
            await link.send({"type": "cpu", "value": 70})
            await device.needle_at(0.7)

            await pc.stop(abort=True)  # the PC crashed: no park, no close frame
            await device.needle_at(0.0)
            await device.wait_for(lambda: device.led == "discovering", "led discovering")

            # two presses while offline (a long one would ask to pair again instead)
            for hold in (0.2, 0.2):
                await press_button(folder, hold)
                await asyncio.sleep(0.2)

            pc = await PC().start(pc.port)
            link = await pc.link(timeout=40)
            await link.greet()
            events = [(await link.recv_type("button"))["event"] for _ in range(2)]
            assert events == ["press", "press"]
            await link.send({"type": "cpu", "value": 20})
            await device.needle_at(0.2)
            link.end()
        await pc.stop()

    run(body)


@pytest.mark.slow
def test_holding_the_button_12_s_is_a_factory_reset_confirmed_by_a_sweep(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc, smoothing_ms=50)
        async with SimDevice(folder) as device:
            link = await pc.link()
            await link.greet()
            (folder / "button").touch()
            await device.wait_for(lambda: device.led == "portal", "the 5 s hint", timeout=15)
            await device.wait_for(lambda: 1.0 in device.needles, "the sweep", timeout=20)
            await device.restarted()
            (folder / "button").unlink()
            assert "reset" in device.lines
            assert not (folder / "sysboy.json").exists()  # every setting forgotten
            # the board starts again with nothing saved: in setup mode, needle at rest
            await device.wait_for(lambda: device.led == "portal", "the portal after the reset")
            assert device.needle == 0.0
            link.end()
        await pc.stop()

    run(body)


@pytest.mark.slow
def test_a_factory_reset_in_setup_mode_sweeps_too(tmp_path: Path) -> None:
    # setup mode leaves the needle code out of its heap; the reset loads it for the sweep
    async def body() -> None:
        folder = tmp_path / "device"
        firmware_settings(folder, ssid="")
        async with SimDevice(folder, **portal_env()) as device:
            await device.wait_for(lambda: device.led == "portal", "setup mode")
            assert device.needle == 0.0
            (folder / "button").touch()
            await device.wait_for(lambda: 1.0 in device.needles, "the sweep", timeout=20)
            await device.restarted()
            (folder / "button").unlink()
            assert "button held 12 s: factory reset" in device.lines
            assert not (folder / "sysboy.json").exists()
            assert device.needle == 0.0  # back at rest after the sweep

    run(body)


def portal_env() -> dict[str, str]:
    return {
        "SYSBOY_PORTAL_HTTP_PORT": str(free_port(socket.SOCK_STREAM)),
        "SYSBOY_PORTAL_DNS_PORT": str(free_port(socket.SOCK_DGRAM)),
    }


async def portal_page(env: dict[str, str]) -> str:
    """GET / from the simulator's portal, as a browser on the setup network would."""
    port = int(env["SYSBOY_PORTAL_HTTP_PORT"])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    page = await asyncio.wait_for(reader.read(), scaled(10))
    writer.close()
    return page.decode("utf-8", "replace")


def test_repeated_wrong_passwords_reopen_the_portal(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc)
        env = portal_env()
        # refusals must go on for minutes before the portal opens; here for 3 s
        wrong = {"SYSBOY_SIM_WIFI": "wrong password", "SYSBOY_WIFI_PORTAL_AFTER_S": "3"}
        async with SimDevice(folder, **wrong, **env) as device:
            await device.wait_for(lambda: device.led == "joining", "led joining")
            await device.wait_for(lambda: device.led == "portal", "the portal", timeout=30)
            await device.wait_for(
                lambda: any(line.startswith("portal http") for line in device.lines), "its page"
            )
            page = await portal_page(env)
            assert "was not accepted" in page, page
            saved = json.loads((folder / "sysboy.json").read_text())
            assert saved["wrong_password_count"] == 1
            assert saved["ssid"] == "SysboyHome"  # kept, so the user only fixes the password
            assert device.needle == 0.0
            assert pc.links.empty()  # it never reached the PC
        await pc.stop()

    run(body)


def test_holding_the_button_5_s_leaves_the_pc_for_the_portal(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc, smoothing_ms=0)
        env = portal_env()
        async with SimDevice(folder, **env) as device:
            link = await pc.link()
            await link.greet()
            await link.send({"type": "cpu", "value": 50})
            await device.needle_at(0.5)
            (folder / "button").touch()
            await device.wait_for(lambda: device.led == "portal", "the 5 s hint", timeout=15)
            (folder / "button").unlink()
            await asyncio.wait_for(link.ws.wait_closed(), scaled(10))
            assert link.ws.close_code == 1001  # going away, politely
            await device.needle_at(0.0)
            await device.wait_for(
                lambda: any(line.startswith("portal http") for line in device.lines), "the portal"
            )
            assert "The button was held" in await portal_page(env)
            link.end()
        await pc.stop()

    run(body)


@pytest.mark.slow
def test_thirty_seconds_of_silence_count_as_a_dead_link(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = device_dir(tmp_path, pc, smoothing_ms=0, idle_park_s=2)
        async with SimDevice(folder) as device:
            link = await pc.link()
            await link.greet()
            await link.send({"type": "cpu", "value": 80})
            await device.needle_at(0.8)
            # the TCP link stays up but the PC says nothing (a Wi-Fi link that died quietly)
            await device.needle_at(0.0, timeout=10)
            second = await pc.link(timeout=60)
            assert any("no word from the PC for 30 s" in line for line in device.lines)
            await second.greet()
            await second.send({"type": "cpu", "value": 30})
            await device.needle_at(0.3)
        await pc.stop()

    run(body)
