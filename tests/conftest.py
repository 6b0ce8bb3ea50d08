"""Shared test fixtures: isolated user folders, scaled timeouts, a running app."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sysboy_tray.metrics import Reading

if TYPE_CHECKING:
    from sysboy_tray.app import App

# The firmware takes `const` from MicroPython's own module; tests that load its pure parts on
# CPython by file (protocol parity, trust) get what firmware_micropython/micropython.py gives
# a CPython that runs the firmware: const() is the value itself.
sys.modules.setdefault("micropython", types.SimpleNamespace(const=lambda value: value))  # type: ignore[arg-type]

# CI machines are slow and noisy: every timeout in the tests goes through this factor.
TIMEOUT_FACTOR = float(os.environ.get("SYSBOY_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """A test timeout, stretched by SYSBOY_TIMEOUT_FACTOR."""
    return seconds * TIMEOUT_FACTOR


async def until(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    """Wait, in a coroutine, until `check()` (run off the loop: it may block) is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + scaled(timeout)
    while not await asyncio.to_thread(check):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture(autouse=True)
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own config, log and data folders."""
    home = tmp_path / "user"
    for name in ("CONFIG", "LOG", "DATA"):
        folder = home / name.lower()
        folder.mkdir(parents=True)
        monkeypatch.setenv(f"SYSBOY_{name}_DIR", str(folder))
    yield home


class SettableSource:
    """A metric sensor whose value the test sets (the sensor boundary, not our code)."""

    def __init__(self, metric: str, value: float | None = 50.0, label: str | None = None) -> None:
        self.id = metric
        self.label = label or metric.upper()
        self.unit = "%"
        self.value = value
        self.reads = 0

    def read(self) -> Reading:
        self.reads += 1
        if self.value is None:
            return Reading.unavailable(self.id, "sensor unplugged")
        return Reading(self.id, self.value, raw=self.value, unit=self.unit)

    def close(self) -> None:
        pass


@contextmanager
def running_app(
    sources: Mapping[str, SettableSource],
    settings: dict[str, Any] | None = None,
    *,
    interval: float = 0.1,
    control: bool = True,
) -> Iterator[App]:
    """A real App on a free loopback port, fed by `sources`, without mDNS."""
    from sysboy_tray.app import App
    from sysboy_tray.config import Paths
    from sysboy_tray.control import control_factory

    paths = Paths.default()
    if settings is not None:
        paths.config_dir.mkdir(parents=True, exist_ok=True)
        paths.settings_file.write_text(json.dumps(settings))
    app = App(
        paths,
        sources=sources,
        port=0,
        interval=interval,
        advertise=False,
        control=control_factory(paths) if control else None,
    )
    app.start()
    try:
        yield app
    finally:
        app.stop()
