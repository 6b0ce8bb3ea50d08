"""A two-needle meter: the whole firmware under MicroPython, each needle on its own.

The PC is played by a real websockets server on loopback (fake_pc.py); the device is
given its address by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.conftest import scaled
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.firmware.fake_pc import PC

LINEAR = [[0.0, 0.0], [100.0, 1.0]]
CURVED = [[0.0, 0.0], [50.0, 0.8], [100.0, 1.0]]
LOW = [[0.0, 0.1], [100.0, 0.6]]


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), scaled(120)))


def two_needles(tmp_path: Path, pc: PC, **settings: Any) -> Path:
    folder = tmp_path / "device"
    needles = [
        {"output": "dac", "pin": 25, "calibration": LINEAR, "smoothing_ms": 0},
        {"output": "dac", "pin": 26, "calibration": CURVED, "smoothing_ms": 0},
    ]
    firmware_settings(folder, server=f"127.0.0.1:{pc.port}", needles=needles, **settings)
    return folder


def saved(folder: Path) -> dict[str, Any]:
    cfg: dict[str, Any] = json.loads((folder / "sysboy.json").read_text())
    return cfg


def test_vram_on_needle_1_and_cpu_on_needle_2_each_with_its_own_calibration(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = two_needles(tmp_path, pc)
        async with SimDevice(folder) as device:
            link = await pc.link()
            hello = await link.greet()
            # the hello reports each needle with the calibration it holds
            assert [n["calibration"] for n in hello["needles"]] == [LINEAR, CURVED]
            assert device.at(1) == 0.0 and device.at(2) == 0.0  # both rest at first

            await link.send({"type": "vram", "value": 50, "label": "VRAM"})
            await link.send({"type": "cpu", "value": 50, "label": "CPU", "needle": 2})
            await device.needle_at(0.5)  # 50 % on needle 1's straight line
            await device.needle_at(0.8, number=2)  # 50 % on needle 2's curve
            await device.wait_for(lambda: "metric vram VRAM" in device.lines, "needle 1's label")
            await device.wait_for(lambda: "metric2 cpu CPU" in device.lines, "needle 2's label")

            # each follows its own pushed values, the other stays where it is
            await link.send({"type": "vram", "value": 20})
            await device.needle_at(0.2)
            await link.send({"type": "cpu", "value": 25, "needle": 2})
            await device.needle_at(0.4, number=2)
            assert device.at(1) == 0.2
            assert 0.8 not in device.positions(1) and 0.2 not in device.positions(2)

            # needle 2's calibration changes needle 2 only, and is kept for it alone
            await link.send({"type": "calibration", "points": LOW, "needle": 2})
            ack = await link.recv_type("ack")
            assert (ack["of"], ack["needle"]) == ("calibration", 2)
            await device.needle_at(0.225, number=2)  # 25 % on the new line
            assert device.at(1) == 0.2
            cfg = saved(folder)
            assert [n["calibration"] for n in cfg["needles"]] == [LINEAR, LOW]
            assert cfg["calibration"] == LINEAR  # an older firmware's key: needle 1's

            # raw mode and sweep name a needle; the other one keeps its value
            await link.send({"type": "needle", "value": 0.33, "needle": 1})
            await device.needle_at(0.33)
            await link.send({"type": "needle", "value": None, "needle": 1})
            await device.needle_at(0.2)
            await link.send({"type": "sweep", "needle": 2})
            await device.wait_for(lambda: 1.0 in device.positions(2), "needle 2 sweeps")
            await device.needle_at(0.225, number=2)
            assert 1.0 not in device.positions(1)

            # a needle the meter lacks is refused in words, and the link stays
            await link.send({"type": "cpu", "value": 10, "needle": 3})
            assert "no needle 3" in (await link.recv_type("error"))["reason"]

            # a park without a needle rests them all
            await link.send({"type": "park", "reason": "sleep"})
            await device.needle_at(0.0)
            await device.needle_at(0.0, number=2)
            link.end()
        await pc.stop()

    run(body)


def test_an_old_single_needle_device_takes_the_briefs_plain_samples(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        folder = tmp_path / "device"
        # what the firmware before several needles saved: no `needles` list
        firmware_settings(folder, server=f"127.0.0.1:{pc.port}", calibration=CURVED, smoothing_ms=0)
        before = (folder / "sysboy.json").read_text()
        async with SimDevice(folder) as device:
            link = await pc.link()
            await link.greet()
            await link.send({"type": "vram", "value": 60.5})  # the brief's own example
            await device.needle_at(0.842)  # 60.5 % on the saved curve
            await link.send({"type": "vram", "value": 25})
            await device.needle_at(0.4)
            assert device.others == {}  # one needle: nothing printed for another
            link.end()
        await pc.stop()
        assert (folder / "sysboy.json").read_text() == before  # loading changed nothing

    run(body)
