"""The needles park before the PC sleeps: logind on a real private D-Bus, a real app and device."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sysboy_tray import session as session_module
from sysboy_tray.app import App
from sysboy_tray.config import Paths
from sysboy_tray.sleep import NoSleepWatcher, sleep_watcher_for
from sysboy_tray.sleep.logind import WHY, LogindWatcher
from sysboy_tray.sleep.windows import (
    PBT_APMRESUMEAUTOMATIC,
    PBT_APMRESUMESUSPEND,
    PBT_APMSUSPEND,
    WM_POWERBROADCAST,
    PowerBroadcast,
    WindowsWatcher,
)
from tests.conftest import SettableSource, scaled
from tests.fake_logind import FakeLogind, private_bus
from tests.meter import Meter

PBT_APMPOWERSTATUSCHANGE = 0x000A
WM_TIMER = 0x0113


def wait_for(check: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture
def system_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private dbus-daemon standing in for the system bus."""
    with private_bus(tmp_path) as address:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        yield address


@pytest.fixture
def logind(system_bus: str) -> Iterator[FakeLogind]:
    with FakeLogind(system_bus) as fake:
        yield fake


def make_app(cpu: SettableSource) -> App:
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(json.dumps({"metric": "cpu"}))
    return App(
        paths, sources={"cpu": cpu}, port=0, interval=0.1, advertise=False, sleep=LogindWatcher()
    )


def samples_sent(app: App, device_id: str) -> int:
    return app.on_loop(lambda: app.hub.sessions[device_id].samples_sent)


def samples_after_last_park(meter: Meter) -> list[float]:
    with meter._changed:
        kinds = [m["type"] for m in meter.messages]
        last_park = len(kinds) - 1 - kinds[::-1].index("park")
        return [m["value"] for m in meter.messages[last_park + 1 :] if m["type"] == "cpu"]


# -- logind ------------------------------------------------------------------------------------


def test_delay_lock_is_held_until_the_needles_are_parked_then_taken_again(
    logind: FakeLogind,
) -> None:
    events: list[str] = []
    sleeping = threading.Event()
    let_go = threading.Event()

    def on_sleep() -> None:
        events.append("sleep")
        sleeping.set()
        assert let_go.wait(scaled(5))

    watcher = LogindWatcher()
    watcher.start(on_sleep, lambda: events.append("wake"))
    try:
        first = logind.wait_for_inhibitors(1)
        assert first.args == ("sleep", "Sysboy", WHY, "delay")
        logind.prepare_for_sleep(True)
        assert sleeping.wait(scaled(5)), "no on_sleep for PrepareForSleep(true)"
        # parking is still going on: logind must keep waiting
        assert not first.released.is_set()
        let_go.set()
        assert first.released.wait(scaled(5)), "the delay lock was not released after parking"
        assert events == ["sleep"]

        logind.prepare_for_sleep(False)
        second = logind.wait_for_inhibitors(2)
        wait_for(lambda: events == ["sleep", "wake"], "no on_wake for PrepareForSleep(false)")
        assert not second.released.is_set()
    finally:
        watcher.stop()
    assert second.released.wait(scaled(5)), "stop() kept the delay lock"


def test_pc_sleep_parks_the_device_and_wake_brings_a_fresh_sample(
    logind: FakeLogind, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a long heartbeat: after the wake the value must come at once, not with a heartbeat
    monkeypatch.setattr(session_module, "HEARTBEAT_S", 60.0)
    cpu = SettableSource("cpu", 30.0)
    app = make_app(cpu)
    app.start()
    try:
        with Meter(app.port) as meter:
            meter.wait_until(lambda ms: any(m.get("value") == 30.0 for m in ms))
            lock = logind.wait_for_inhibitors(1)

            logind.prepare_for_sleep(True)
            assert meter.wait_for("park")[-1] == {"type": "park", "reason": "sleep"}
            assert lock.released.wait(scaled(5)), "the delay lock was not released"

            # until the PC wakes, new readings must not lift the parked needle
            sent = samples_sent(app, "dev-a")
            cpu.value = 70.0
            rounds = app.sampler.rounds
            wait_for(lambda: app.sampler.rounds >= rounds + 3, "the sampler stopped")
            app.on_loop(lambda: None)
            assert samples_sent(app, "dev-a") == sent
            assert samples_after_last_park(meter) == []

            logind.prepare_for_sleep(False)
            logind.wait_for_inhibitors(2)
            meter.wait_until(lambda ms: 70.0 in samples_after_last_park(meter))

            # a second night; this time the value does not move, yet it comes back at once
            logind.prepare_for_sleep(True)
            assert len(meter.wait_for("park", count=2)) == 2
            assert logind.inhibitors[1].released.wait(scaled(5))
            logind.prepare_for_sleep(False)
            meter.wait_until(lambda ms: samples_after_last_park(meter)[:1] == [70.0])
            assert logind.wait_for_inhibitors(3).args[3] == "delay"
    finally:
        app.stop()
    assert logind.inhibitors[2].released.wait(scaled(5)), "quitting kept the delay lock"


def test_sysboy_serve_parks_the_device_when_the_pc_sleeps(logind: FakeLogind) -> None:
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "cpu"}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sysboy_tray", "serve", "--port", "0", "--no-mdns"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r":(\d+)/device$", line.strip())
        assert match, f"unexpected first line: {line!r}"
        with Meter(int(match.group(1))) as meter:
            meter.wait_for("cpu")
            lock = logind.wait_for_inhibitors(1)
            logind.prepare_for_sleep(True)
            assert meter.wait_for("park")[-1] == {"type": "park", "reason": "sleep"}
            assert lock.released.wait(scaled(5))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(scaled(10)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def app_runs_without_sleep_watch(caplog: pytest.LogCaptureFixture, expected: str) -> None:
    caplog.set_level(logging.INFO, logger="sysboy_tray.sleep")
    cpu = SettableSource("cpu", 42.0)
    app = make_app(cpu)
    app.start()
    try:
        wait_for(
            lambda: any(expected in r.getMessage() for r in caplog.records),
            f"no log line saying {expected!r}",
        )
        with Meter(app.port) as meter:
            meter.wait_until(lambda ms: any(m.get("value") == 42.0 for m in ms))
    finally:
        app.stop()
    lines = [r for r in caplog.records if r.name.startswith("sysboy_tray.sleep")]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.INFO


def test_without_a_system_bus_the_app_logs_once_and_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
    app_runs_without_sleep_watch(caplog, "no system bus")


def test_without_logind_on_the_bus_the_app_logs_once_and_runs(
    system_bus: str, caplog: pytest.LogCaptureFixture
) -> None:
    app_runs_without_sleep_watch(caplog, "no logind")


# -- the choice of platform and the Windows messages --------------------------------------------


def test_each_platform_gets_its_own_watcher() -> None:
    assert not hasattr(ctypes, "windll")  # so choosing for Windows cannot have touched it
    assert isinstance(sleep_watcher_for("win32"), WindowsWatcher)
    assert isinstance(sleep_watcher_for("linux"), LogindWatcher)
    assert isinstance(sleep_watcher_for("darwin"), NoSleepWatcher)


def test_power_broadcasts_become_one_sleep_and_one_wake() -> None:
    events: list[str] = []
    broadcast = PowerBroadcast(lambda: events.append("sleep"), lambda: events.append("wake"))
    assert broadcast.handle(WM_TIMER, PBT_APMSUSPEND) is False
    assert broadcast.handle(WM_POWERBROADCAST, PBT_APMRESUMEAUTOMATIC) is True  # not asleep
    assert broadcast.handle(WM_POWERBROADCAST, PBT_APMPOWERSTATUSCHANGE) is True
    assert events == []
    for wparam in (PBT_APMSUSPEND, PBT_APMSUSPEND, PBT_APMRESUMEAUTOMATIC, PBT_APMRESUMESUSPEND):
        assert broadcast.handle(WM_POWERBROADCAST, wparam) is True
    assert events == ["sleep", "wake"]
    # a wake without the user (remote wake) brings RESUMEAUTOMATIC alone
    broadcast.handle(WM_POWERBROADCAST, PBT_APMSUSPEND)
    broadcast.handle(WM_POWERBROADCAST, PBT_APMRESUMEAUTOMATIC)
    assert events == ["sleep", "wake", "sleep", "wake"]


def test_a_failing_callback_does_not_escape_the_window_procedure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> None:
        raise RuntimeError("the app is gone")

    broadcast = PowerBroadcast(broken, broken)
    assert broadcast.handle(WM_POWERBROADCAST, PBT_APMSUSPEND) is True
    assert broadcast.asleep
    assert "the sleep callback failed" in caplog.text
