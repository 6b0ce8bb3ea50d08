"""End to end: the firmware (sim HAL, MicroPython) finds a real `sysboy serve` by a real mDNS
legacy-unicast query, shows its values through the calibration, parks when it stops, and
comes back when it returns (on a new port, so the device must look for it again).

Both run in a private network namespace when one can be made (root), so the multicast
query meets only this test's server; elsewhere the query goes to the server's address.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

from tests import handshake
from tests.conftest import scaled
from tests.firmware.device_sim import SimDevice, firmware_settings, settles_within
from tests.firmware.netns import private_network
from tests.firmware.upy import REPO

CURVED = [[0.0, 0.0], [50.0, 0.8], [100.0, 1.0]]
SMOOTHING_MS = 200
DEVICE_ID = "sysboy-e2e"
LISTENING = re.compile(r"listening on ws://([\d.]+):(\d+)/device")
# what `sysboy calibrate` does once the user has set the points in its window
CALIBRATE = (
    "import json, sys\n"
    "from sysboy_tray.control_client import ControlClient\n"
    "with ControlClient.find() as client:\n"
    "    client.calibrate(tuple(tuple(p) for p in json.loads(sys.argv[1])))\n"
)


class PC:
    """`sysboy serve` and the `sysboy` commands, with the test's own folders (conftest)."""

    def __init__(self, prefix: list[str]) -> None:
        self.prefix = prefix
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.address = ""
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> PC:
        self.proc = await asyncio.create_subprocess_exec(
            *self.prefix,
            *(sys.executable, "-m", "sysboy_tray", "serve", "--port", "0", "--interval", "0.5"),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        for _ in range(int(scaled(300))):
            if any(line.startswith("advertising ") for line in self.lines):
                return self
            assert self.proc.returncode is None, self.output()
            await asyncio.sleep(0.1)
        raise AssertionError("sysboy serve did not advertise:\n" + self.output())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if found := LISTENING.search(line):
                self.address = found.group(1)

    def output(self) -> str:
        return "\n".join(self.lines)

    async def command(self, *args: str) -> None:
        """Run a `sysboy` command (or `-c` code) beside the server; it must succeed."""
        proc = await asyncio.create_subprocess_exec(
            *self.prefix,
            *(sys.executable, *(args if args[0] == "-c" else ("-m", "sysboy_tray", *args))),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), scaled(30))
        assert proc.returncode == 0, f"{args}: {out.decode()}\n{self.output()}"

    async def stop(self) -> None:
        """SIGTERM, as at logout: the server parks every needle and says goodbye."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(self.proc.wait(), scaled(30)) == 0, self.output()
        if self._reader is not None:
            await self._reader


def test_device_finds_the_pc_follows_it_parks_and_recovers(tmp_path: Path) -> None:
    async def body(prefix: list[str] | None) -> None:
        folder = tmp_path / "device"
        pc = await PC(prefix or []).start()
        # paired as a USB deploy does it: the key in the PC's pairs file and in the meter's
        pairing = handshake.pair(DEVICE_ID)
        firmware_settings(folder, smoothing_ms=SMOOTHING_MS, key=pairing.key, pc=pairing.pc)
        await pc.command("push", "demo", "20")
        await pc.command("metric", "demo")
        # in the namespace the query is the real multicast one; outside, it goes to the PC
        env = {"SYSBOY_SIM_ID": DEVICE_ID}
        if not prefix:
            env["SYSBOY_MDNS_ADDR"] = pc.address
        async with SimDevice(folder, prefix=prefix, **env) as device:
            await device.needle_at(0.2, timeout=30)
            assert any("discovery: found" in line for line in device.lines), device.output()
            assert settles_within(device.needles, 1, 0.2, SMOOTHING_MS)

            # the PC calibrates the meter; the same 20 % moves to its new place
            start = len(device.needles)
            await pc.command("-c", CALIBRATE, json.dumps(CURVED))
            await device.needle_at(0.32)
            assert settles_within(device.needles, start, 0.32, SMOOTHING_MS)
            saved = json.loads((folder / "sysboy.json").read_text())
            assert saved["calibration"] == CURVED

            start = len(device.needles)
            await pc.command("push", "demo", "80")
            await device.needle_at(0.92)
            glide = device.needles[start:]
            assert all(0.32 < v <= 0.92 for v in glide) and len(glide) > 3, glide
            assert settles_within(device.needles, start, 0.92, SMOOTHING_MS)

            await pc.stop()
            await device.needle_at(0.0)  # parked: the PC is gone
            assert any("park (quit)" in line for line in device.lines), device.output()

            pc = await PC(prefix or []).start()  # back, on another port
            await pc.command("push", "demo", "60")
            await pc.command("metric", "demo")
            start = len(device.needles)
            await device.needle_at(0.84, timeout=60)  # 60 % through the kept calibration
            assert settles_within(device.needles, start, 0.84, SMOOTHING_MS)
            assert sum("discovery: found" in line for line in device.lines) >= 2
            await pc.stop()
            await device.needle_at(0.0)

    with private_network() as prefix:
        asyncio.run(asyncio.wait_for(body(prefix), scaled(180)))
