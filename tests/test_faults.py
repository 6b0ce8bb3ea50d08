"""Faults, each survived with nothing lost: NVML errors, a damaged settings file, kill -9, sleep.

Only the boundaries are faked (the `pynvml` driver calls); the app, its server and
its clients are real, over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.live import isolated_home, link, start_server
from sysboy_tray import session as session_module
from sysboy_tray.app import App
from sysboy_tray.config import Paths, Settings, SettingsStore
from tests import handshake
from tests.conftest import SettableSource, scaled
from tests.test_metrics_nvidia import Driver, FakeGpu

GIB = 1024**3


async def recv(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), scaled(5)))
    assert isinstance(message, dict)
    return message


async def recv_until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(scaled(10)):
        while (message := await recv(ws))["type"] != kind:
            pass
    return message


def url(app: App) -> str:
    return f"ws://127.0.0.1:{app.port}/device"


# -- the NVML driver fails for a while, then recovers -----------------------------------------


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Driver:
    return Driver([FakeGpu("NVIDIA GeForce RTX 4080", 16 * GIB, 4 * GIB)]).install(monkeypatch)


def test_nvml_errors_park_the_needle_then_samples_come_back(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = App(Paths.default(), port=0, interval=0.1, advertise=False)  # the real sources
    app.start()

    async def main() -> None:
        async with connect(url(app)) as ws, connect(url(app)) as other:
            await handshake.alink(ws, "gpu-meter", handshake.pair("gpu-meter"))
            await handshake.alink(other, "cpu-meter", handshake.pair("cpu-meter"))
            assert (await recv(ws))["needles"] == ["vram"]
            assert (await recv_until(ws, "vram"))["value"] == pytest.approx(25.0)
            await asyncio.to_thread(app.set_metric, "ram", "cpu-meter")
            await recv_until(other, "ram")

            driver.memory_error = pynvml.NVMLError_Unknown  # the driver fails mid-run
            assert (await recv_until(ws, "park"))["reason"] == "unavailable"
            # through the outage: no value for the needle, and the other meter is served
            outage_ends = asyncio.get_running_loop().time() + scaled(1.5)
            seen = []
            while asyncio.get_running_loop().time() < outage_ends:
                with contextlib.suppress(TimeoutError):
                    seen.append(await asyncio.wait_for(ws.recv(), 0.2))
            assert not any('"vram"' in str(text) for text in seen)
            await asyncio.wait_for(other.recv(), scaled(6))  # heartbeat at the latest

            driver.memory_error = None  # the driver is back
            driver.gpus[0].used = 8 * GIB
            assert (await recv_until(ws, "vram"))["value"] == pytest.approx(50.0)

    try:
        asyncio.run(main())
    finally:
        app.stop()
    outage_logs = [r.message for r in caplog.records if r.message.startswith("vram unavailable")]
    assert len(outage_logs) == 1  # once per outage, not once per tick
    assert "vram is back" in caplog.text


# -- a damaged settings file ---------------------------------------------------------------------

DAMAGED = {
    "not json": b"{not json",
    "not UTF-8": b'{"metric": "\xff\xfe"}',
    "empty": b"",
    "wrong types": b'{"port": "high", "interval_s": [1]}',
    "NaN": b'{"interval_s": NaN}',
    "deep nesting": b"[" * 100_000,
    "not an object": b"[1, 2, 3]",
    "bad calibration": b'{"devices": {"a": {"calibration": [[0, 0]]}}}',
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_damaged_settings_are_kept_aside_and_defaults_serve(
    content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_bytes(content)
    app = App(paths, sources={"vram": SettableSource("vram", 30.0)}, port=0, advertise=False)
    app.start()

    async def main() -> None:
        async with connect(url(app)) as ws:
            await handshake.alink(ws, "after-damage", handshake.pair("after-damage"))
            assert (await recv(ws))["needles"] == ["vram"]  # the default metric
            assert (await recv_until(ws, "vram"))["value"] == 30.0

    try:
        asyncio.run(main())
    finally:
        app.stop()
    bad = paths.settings_file.with_name("settings.json.bad")
    assert bad.read_bytes() == content  # the damaged file is kept for the user
    fresh = json.loads(paths.settings_file.read_text("utf-8"))  # and a good one replaces it
    assert fresh["metric"] == Settings().metric and fresh["install_id"]
    assert "is damaged" in caplog.text


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_settings_bytes_load_or_fall_back(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.json"
        path.write_bytes(content)
        store = SettingsStore(path)
        assert store.settings.install_id
        bad = path.with_name("settings.json.bad")
        assert not bad.exists() or bad.read_bytes() == content
        assert json.loads(path.read_text("utf-8"))["install_id"] == store.settings.install_id


# -- kill -9 mid-stream, then start again ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def home() -> Iterator[dict[str, str]]:
    yield isolated_home("clock")


def test_kill_9_mid_stream_then_restart_serves_the_device_again(home: dict[str, str]) -> None:
    port = free_port()
    settings_file = Path(home["SYSBOY_CONFIG_DIR"]) / "settings.json"
    # a meter the user set up: only those have their button's choice saved
    settings_file.write_text(
        json.dumps({"metric": "clock", "devices": {"survivor": {"metric": "clock"}}})
    )
    first = start_server(interval=0.1, port=port, env=home)
    links: list[list[dict[str, Any]]] = []
    pressed = asyncio.Event()

    async def device() -> None:
        """A real client that reconnects (the firmware's own reconnect is tested elsewhere)."""
        delays = lambda: (0.1 for _ in itertools.count())  # noqa: E731
        async for ws in connect(f"ws://127.0.0.1:{port}/device", reconnect_delays=delays):
            got: list[dict[str, Any]] = []
            links.append(got)
            try:
                await link(ws, port, "survivor")
                async for text in ws:
                    got.append(json.loads(text))
                    if len(links) == 1 and len(got) == 4 and not pressed.is_set():
                        pressed.set()
                        await ws.send('{"type": "button", "event": "press"}')
            except ConnectionClosed:
                continue

    def chosen() -> str | None:
        data = json.loads(settings_file.read_text("utf-8"))  # never half-written
        device = data.get("devices", {}).get("survivor", {})
        return device.get("needles", [{}])[0].get("metric")  # the button's needle: needle 1

    async def main() -> None:
        task = asyncio.create_task(device())
        try:
            async with asyncio.timeout(scaled(30)):
                while chosen() in (None, "clock"):  # the press is saved...
                    await asyncio.sleep(0.05)
                metric = chosen()
                while sum(m["type"] == metric for m in links[0]) < 1:
                    await asyncio.sleep(0.05)
                first.kill()  # ... then the server dies with no goodbye
                assert json.loads(settings_file.read_text("utf-8"))  # still whole
                second = await asyncio.to_thread(start_server, 0.1, port, home)
                try:
                    while len(links) < 2 or not any(m["type"] == metric for m in links[-1]):
                        await asyncio.sleep(0.05)
                    assert links[-1][0]["type"] == "welcome"
                    assert links[-1][0]["needles"] == [metric]  # the choice survived the kill
                finally:
                    assert second.stop() == 0
                assert second.problems() == []
                assert "is damaged" not in second.log()
        finally:
            task.cancel()

    asyncio.run(main())
    assert first.proc.returncode == -9


# -- the PC sleeps and wakes up ---------------------------------------------------------------


def test_sleep_parks_every_needle_and_the_next_readings_bring_them_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a long heartbeat: the value must come back with the next reading, not with a heartbeat
    monkeypatch.setattr(session_module, "HEARTBEAT_S", 60.0)
    cpu = SettableSource("cpu", 12.0)
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(json.dumps({"metric": "cpu"}))
    app = App(paths, sources={"cpu": cpu}, port=0, interval=0.1, advertise=False)
    app.start()

    async def main() -> None:
        async with connect(url(app)) as a, connect(url(app)) as b:
            await handshake.alink(a, "a", handshake.pair("a"))
            await handshake.alink(b, "b", handshake.pair("b"))
            for ws in (a, b):
                assert (await recv_until(ws, "cpu"))["value"] == 12.0
            # what the sleep hook calls; the value does not move meanwhile
            await asyncio.to_thread(app.park_all, "sleep")
            for ws in (a, b):
                assert (await recv_until(ws, "park"))["reason"] == "sleep"
                assert (await recv_until(ws, "cpu"))["value"] == 12.0
            # a second sleep, after which the value moved
            await asyncio.to_thread(app.park_all, "sleep")
            cpu.value = 70.0
            for ws in (a, b):
                assert (await recv_until(ws, "park"))["reason"] == "sleep"
                assert (await recv_until(ws, "cpu"))["value"] in (12.0, 70.0)

    try:
        asyncio.run(main())
    finally:
        app.stop()
