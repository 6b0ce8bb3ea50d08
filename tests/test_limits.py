"""Connection caps and frame budgets (limits.py) on a live server, from a stranger's address."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from sysboy_tray import limits
from sysboy_tray.config import MAX_DEVICES, Paths, SettingsStore
from sysboy_tray.errors import ConfigError, ControlError
from sysboy_tray.limits import ConnectionGuard, FrameBudget, total_for
from tests import handshake
from tests.conftest import SettableSource, running_app, scaled

STRANGER = "127.0.0.2"


def raw_socket(port: int, source: str) -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", port), timeout=scaled(5), source_address=(source, 0)
    )
    return sock


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    """True when the server closed (or reset) the socket within `wait` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_one_address_holds_at_most_its_share_and_others_still_get_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sysboy_tray.limits")
    with running_app({"cpu": SettableSource("cpu")}, {"metric": "cpu"}) as app:
        held = [raw_socket(app.port, STRANGER) for _ in range(limits.PER_ADDRESS)]
        # past the share: closed at accept, without a byte sent or read
        extra = [raw_socket(app.port, STRANGER) for _ in range(30)]
        assert all(closed_by_server(sock, scaled(5)) for sock in extra)
        assert not any(closed_by_server(sock, 0.2) for sock in held)
        # this PC's own address is counted apart: a meter links at once
        with connect(f"ws://127.0.0.1:{app.port}/device", open_timeout=scaled(5)) as ws:
            handshake.link(ws, "good", handshake.pair("good"))
            assert json.loads(ws.recv(scaled(5)))["type"] == "welcome"
        # one of the stranger's sockets ends: it may open one more
        held.pop().close()
        deadline = time.monotonic() + scaled(5)
        while app.on_loop(lambda: app.server.guard.open[STRANGER]) >= limits.PER_ADDRESS:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        again = raw_socket(app.port, STRANGER)
        assert not closed_by_server(again, 0.3)
        for sock in [*held, again, *extra]:
            sock.close()
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    # 30 refusals: one line at once, the rest summed up in one line when the app stopped
    assert len(refusals) == 2, refusals
    assert "refused 1 connections (1 from '127.0.0.2')" in refusals[0]
    assert "refused 29 connections (29 from '127.0.0.2')" in refusals[1]


def test_the_total_cap_stays_under_the_open_file_limit() -> None:
    assert total_for(None) == limits.TOTAL
    assert total_for(4096) == limits.TOTAL
    small = total_for(1024)
    assert small + limits.FILE_RESERVE + limits.ACCEPTS_IN_FLIGHT <= 1024
    assert total_for(100) == limits.PER_ADDRESS  # never below one address's share


def test_the_guard_counts_per_address_and_in_all() -> None:
    async def on_the_loop() -> None:  # where the server calls it
        guard = ConnectionGuard(per_address=3, total=4)
        assert [guard.admit(h) for h in ("a", "a", "a", "a")] == [True, True, True, False]
        assert guard.admit("b") and not guard.admit("c")  # the total is reached
        guard.release("a")
        assert guard.admit("c")
        assert guard.refused_total == 2
        guard.close()

    asyncio.run(on_the_loop())


def test_a_frame_budget_refills_and_marks_a_flood() -> None:
    budget = FrameBudget(rate=0.01, burst=5)
    assert all(budget.take() for _ in range(5))
    assert not any(budget.take() for _ in range(limits.MAX_DROPPED - 1))
    assert not budget.flooding
    assert not budget.take() and budget.flooding
    quick = FrameBudget(rate=1000.0, burst=5)
    for _ in range(8):
        quick.take()
    time.sleep(0.05)  # 1000 a second: the burst is back, the flood forgiven
    assert quick.take() and quick.dropped == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX open-file limits")
def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 2048))\n"
        "from sysboy_tray.limits import raise_open_file_limit\n"
        "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=scaled(30)
    )
    assert done.stdout.split(None, 1) == ["2048", "(2048, 2048)\n"], done.stderr


# -- the settings file: bounded, and written only when something changed --------------------


def test_settings_keep_at_most_max_devices_and_write_only_real_changes(user_dirs: Path) -> None:
    path = Paths.default().settings_file
    store = SettingsStore(path)
    for index in range(MAX_DEVICES):
        store.update_device(f"meter-{index}", metric="cpu")
    assert store.flush(scaled(5))
    with pytest.raises(ConfigError, match=f"at most {MAX_DEVICES} meters"):
        store.update_device("one-too-many", metric="cpu")
    assert "one-too-many" not in store.settings.devices
    store.update_device("meter-0", metric="ram")  # a known one may still change
    assert store.flush(scaled(5))
    written = path.stat().st_ino, path.read_bytes()
    # the same values again, a device that is not there forgotten: the file is not touched
    store.update_device("meter-0", metric="ram")
    store.update(metric=store.settings.metric, interval_s=store.settings.interval_s)
    store.forget_device("never-seen")
    assert store.flush(scaled(5))
    assert (path.stat().st_ino, path.read_bytes()) == written
    store.forget_device("meter-1")
    assert store.flush(scaled(5))
    assert path.stat().st_ino != written[0]
    assert len(json.loads(path.read_bytes())["devices"]) == MAX_DEVICES - 1


def test_a_full_address_is_told_apart_from_an_app_that_is_not_running() -> None:
    from sysboy_tray.control_client import ControlClient

    with running_app({"cpu": SettableSource("cpu")}, {"metric": "cpu"}) as app:
        # every slot of this PC's own address taken (a program of this user, or another)
        held = [raw_socket(app.port, "127.0.0.1") for _ in range(limits.PER_ADDRESS)]
        try:
            # connected is not yet taken in: the app counts each once its loop accepts it
            deadline = time.monotonic() + scaled(20)
            while app.on_loop(lambda: app.server.guard.open["127.0.0.1"]) < limits.PER_ADDRESS:
                assert time.monotonic() < deadline, "the app never took the held connections"
                time.sleep(0.05)
            with pytest.raises(ControlError, match="running but did not take the connection"):
                ControlClient.find(timeout=scaled(5))
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + scaled(20)
        while app.on_loop(lambda: app.server.guard.open["127.0.0.1"]) > 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with ControlClient.find(timeout=scaled(5)) as client:
            assert client.status().port == app.port
