"""Hostile network input against a live `sysboy serve` (bench/bench_hostile.py, shortened).

Each attack runs while a well-behaved device, in its own process, is served a clock
metric at 10 Hz; it must keep receiving samples throughout, and the server must log
no error.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from bench.bench_hostile import (
    DESKTOP_FILES,
    RawLink,
    SilentResult,
    SlowResult,
    deaf,
    flood,
    link_as,
    malformed,
    ping_flood,
    run_exhaustion,
    silent,
    slowloris,
    status_run,
    strangers_press,
)
from bench.live import (
    ClockSource,
    DeviceRecord,
    GoodDevice,
    Server,
    isolated_home,
    start_server,
)
from sysboy_tray import limits, protocol
from sysboy_tray import session as session_module
from sysboy_tray.app import App
from sysboy_tray.config import Paths
from tests import handshake
from tests.conftest import scaled


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server(interval=0.1)
    yield running
    assert running.stop() == 0


@pytest.fixture
def good(server: Server) -> Iterator[list[DeviceRecord]]:
    """A well-behaved device linked through the test; checked when the test is done."""
    device = GoodDevice(server.port)
    device.wait_ready()
    seen: list[DeviceRecord] = []
    yield seen
    record = device.stop()
    seen.append(record)
    timing = record.window(record.arrivals[0][0], record.arrivals[-1][0] + 1)
    # 10 Hz, every tick moves: a gap of seconds would mean the attack stalled the server
    assert timing.samples >= 2
    assert timing.gaps[-1] < scaled(2.0)
    assert server.proc.poll() is None
    assert server.problems() == []


def wait_for_files(server: Server, most: int) -> int:
    """The server's open files once they fell to `most` (closing links linger up to 2 s)."""
    deadline = time.monotonic() + scaled(10)
    while (files := server.fds()) > most and time.monotonic() < deadline:
        time.sleep(0.1)
    return files


def test_malformed_frames_are_refused_and_the_server_carries_on(
    server: Server, good: list[DeviceRecord]
) -> None:
    files = server.fds()
    rss = []
    for _ in range(2):
        result = asyncio.run(malformed(server.port, 1500, min_seconds=1.0))
        assert result.frames >= 1500
        assert result.connections > 100
        # bad JSON: 1008 after five in a row; broken framing: 1002, bad UTF-8: 1007,
        # too big: 1009
        assert set(result.closes) <= {1008, 1002, 1007, 1009}
        assert result.closes[1008] > 0 and result.closes[1002] > 0
        assert wait_for_files(server, files + 2) <= files + 2  # every link let go
        rss.append(server.rss_mb())
    # hundreds of closing links at once raise the high-water mark once; a second
    # round of the same must not raise it further
    assert rss[1] - rss[0] < 5


def test_silent_and_trickling_links_are_cut_and_others_still_get_in(
    server: Server, good: list[DeviceRecord]
) -> None:
    files_before = server.fds()

    async def both() -> tuple[SilentResult, SlowResult]:
        return await asyncio.gather(
            silent(server.port, 100),
            slowloris(server.port, 20, 0.5, scaled(20.0), source="127.0.0.3"),
        )

    quiet, slow = asyncio.run(both())
    # one address holds at most PER_ADDRESS links; the rest are closed at accept
    assert quiet.opened + quiet.refused == 100
    assert 0 < quiet.opened <= limits.PER_ADDRESS
    # handshake done, no hello: closed with 1008 after 5 s
    assert quiet.closes == {1008: quiet.opened}
    # handshake trickled a byte at a time: cut by the server's open_timeout (10 s),
    # long before the 20 s we would wait, while a fresh client still gets in
    assert slow.links == 20
    assert slow.completed == 0
    assert max(slow.cut_after_s) < scaled(20.0)
    assert slow.fresh_client_ok
    assert wait_for_files(server, files_before + 2) <= files_before + 2  # every socket let go


def test_floods_are_dropped_then_closed_without_an_error_each(
    server: Server, good: list[DeviceRecord]
) -> None:
    valid = asyncio.run(flood(server.port, "valid", 1000.0, scaled(10.0)))
    assert valid.close == 1008
    assert valid.errors == 0
    # the burst (40) is read, then 100 frames are dropped before the link is closed
    assert valid.sent >= limits.RATE_BURST + limits.MAX_DROPPED - 1
    bad = asyncio.run(flood(server.port, "bad", 1000.0, scaled(10.0)))
    assert bad.close == 1008
    mixed = asyncio.run(flood(server.port, "mixed", 1000.0, scaled(10.0)))
    assert mixed.close == 1008
    assert mixed.errors <= limits.RATE_BURST  # not one error per frame


def test_pings_draw_on_the_budget_and_a_ping_flood_is_cut_off(
    server: Server, good: list[DeviceRecord]
) -> None:
    async def flood_and_ask() -> tuple[Any, tuple[int, float, str]]:
        flood = asyncio.create_task(ping_flood(server.port, scaled(10.0)))
        await asyncio.sleep(0.5)
        asked = await asyncio.to_thread(status_run, server, scaled(30))
        return await flood, asked

    pings, (code, _, text) = asyncio.run(flood_and_ask())
    # the burst (40) and 100 dropped pings, read in 4 KiB slices: cut long before 10 s
    assert pings.links == pings.cut == 1
    assert code == 0, text  # the control API answered during the flood


def test_a_crowd_of_idle_and_half_open_connections_leaves_room_for_a_meter() -> None:
    """5,000 connections from one stranger, the server at a desktop's open-file limits."""
    if not hasattr(socket, "SO_LINGER") or sys.platform == "win32":
        pytest.skip("needs POSIX open-file limits")
    import resource

    from sysboy_tray.limits import raise_open_file_limit

    mine = raise_open_file_limit() or 0
    if mine < 5000 + 500 or resource.getrlimit(resource.RLIMIT_NOFILE)[1] < DESKTOP_FILES[1]:
        pytest.skip(f"this process may open only {mine} files; the attack needs 5,500")
    run = run_exhaustion(5000, scaled(10.0), meter_timeout=scaled(5.0))
    print("\n".join(run.lines()))
    assert run.limits == (DESKTOP_FILES[1], DESKTOP_FILES[1])  # soft raised to the hard limit
    assert run.attack.attempts >= 5000
    # the server held at most its caps: a few files of its own, 16 from the stranger, the
    # meter and the CLI, and the accepted sockets waiting for the guard
    assert run.files_peak < run.files_before + limits.PER_ADDRESS + limits.ACCEPTS_IN_FLIGHT + 16
    assert run.attack.closed_by_server >= 5000 - limits.PER_ADDRESS
    # a meter from another address linked each time (meter_link_s raises past 5 s)
    assert len(run.link_s) == 3
    assert [code for code, _ in run.status] == [0, 0, 0], run.status_text
    assert "listening on port" in run.status_text
    assert run.log_bytes < 1_000_000


def test_strangers_pressing_the_button_leave_the_settings_file_alone() -> None:
    """3,000 stranger ids each press once; then a meter the user set up presses once."""
    env = isolated_home()
    settings = Path(env["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "clock", "devices": {"desk": {"metric": "clock"}}}))
    running = start_server(interval=0.2, env=env)
    try:
        before = settings.read_bytes(), settings.stat().st_ino, settings.stat().st_mtime_ns
        ids = [f"stranger-{i}" for i in range(3000)]
        pressed = asyncio.run(strangers_press(running.port, ids))
        # no stranger holds a key: none is shown a metric, each press ends its link ...
        assert pressed.moved == 0 and pressed.turned_away == 3000
        time.sleep(0.5)  # (a write would start at once, on the settings thread)
        after = settings.read_bytes(), settings.stat().st_ino, settings.stat().st_mtime_ns
        assert after == before  # ... and not one was written down
        # the meter the user set up: its press is remembered
        known = asyncio.run(
            strangers_press(running.port, ["desk"], source="127.0.0.1", paired=True)
        )
        assert known.moved == 1
        deadline = time.monotonic() + scaled(5)
        while settings.read_bytes() == before[0]:
            assert time.monotonic() < deadline, "the known meter's press was not saved"
            time.sleep(0.05)
        saved = json.loads(settings.read_bytes())
        assert set(saved["devices"]) == {"desk"}
        assert saved["devices"]["desk"]["needles"][0]["metric"] != "clock"
        assert running.problems() == []
    finally:
        assert running.stop() == 0


def test_clients_that_read_nothing_leave_the_server_well(
    server: Server, good: list[DeviceRecord]
) -> None:
    result = asyncio.run(deaf(server.port, 10, scaled(2.0)))
    assert result.links == 10


BIG = protocol.Welcome(
    tuple(protocol.MetricInfo(f"m{i}", "L" * 32, "u" * 16) for i in range(32)), ("clock",)
)


def test_a_device_that_stops_reading_has_a_bounded_backlog_and_is_cut(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(session_module, "SEND_STALL_S", 1.0)
    monkeypatch.setattr(session_module, "HEARTBEAT_S", 0.2)
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(json.dumps({"metric": "clock"}))
    app = App(paths, sources={"clock": ClockSource()}, port=0, interval=0.1, advertise=False)
    app.start()

    async def flood_until_cut() -> tuple[int, int]:
        """On the server's loop: queue commands for the deaf device until its link is cut."""
        peak_queue = peak_buffer = 0
        while (session := app.hub.sessions.get("deaf")) is not None or not peak_queue:
            if session is not None:
                if not peak_queue:  # a small kernel buffer: fills in kilobytes, not megabytes
                    sock = session.ws.transport.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
                for _ in range(40):
                    session.send(BIG)  # about 2 KiB each
                queued, buffered = session.backlog
                peak_queue, peak_buffer = max(peak_queue, queued), max(peak_buffer, buffered)
            await asyncio.sleep(0.01)
        return peak_queue, peak_buffer

    async def main() -> None:
        async with connect(f"ws://127.0.0.1:{app.port}/device") as ws:
            await handshake.alink(ws, "good", handshake.pair("good"))
            link = await RawLink.open(app.port, rcvbuf=4096)
            await link_as(link, app.port, "deaf")
            peak_queue, peak_buffer = await asyncio.to_thread(
                app.call, flood_until_cut(), scaled(30)
            )
            link.close()
            assert 0 < peak_queue <= session_module.MAX_PENDING_COMMANDS
            # websockets stops writing at 32 KiB (its write limit): one frame past that at most
            assert peak_buffer <= 32 * 1024 + 4096
            # the good device was served all along
            clock = [json.loads(await asyncio.wait_for(ws.recv(), scaled(2))) for _ in range(3)]
            assert any(m["type"] == "clock" for m in clock)

    try:
        asyncio.run(main())
    finally:
        app.stop()
    assert "device deaf stopped reading" in caplog.text  # cut by the stall guard
