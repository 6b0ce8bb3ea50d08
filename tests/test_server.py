"""The WebSocket server over live loopback sockets, with real `websockets` clients."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sysboy_tray import session as session_module
from sysboy_tray.app import App
from sysboy_tray.config import Paths
from tests import handshake
from tests.conftest import SettableSource, running_app, scaled


@pytest.fixture
def sources() -> dict[str, SettableSource]:
    return {
        "cpu": SettableSource("cpu", 12.3),
        "ram": SettableSource("ram", 40.0),
        "vram": SettableSource("vram", None),
    }


@pytest.fixture
def app(sources: dict[str, SettableSource]) -> Iterator[App]:
    with running_app(sources, {"metric": "cpu"}, control=False) as running:
        yield running


def url(app: App) -> str:
    return f"ws://127.0.0.1:{app.port}/device"


async def link(app: App, id: str = "dev-a", **hello: Any) -> ClientConnection:
    """A paired meter that proved its key: the next message is the PC's welcome."""
    ws = await connect(url(app))
    await handshake.alink(ws, id, handshake.pair(id), **hello)
    return ws


async def recv(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), scaled(timeout)))
    assert isinstance(message, dict)
    return message


async def recv_until(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(scaled(timeout)):
        while True:
            message = await recv(ws, timeout)
            if message["type"] == kind:
                return message


def test_hello_then_samples_of_the_chosen_metric(app: App) -> None:
    async def main() -> None:
        async with await link(app) as ws:
            welcome = await recv(ws)
            assert welcome["type"] == "welcome" and welcome["needles"] == ["cpu"]
            assert {m["id"] for m in welcome["metrics"]} == {"cpu", "ram", "vram"}
            sample = await recv(ws)
            assert sample["type"] == "cpu" and sample["value"] == 12.3

    asyncio.run(main())


def test_browser_origin_is_refused_with_403(app: App) -> None:
    async def main() -> None:
        with pytest.raises(InvalidStatus) as info:
            await connect(url(app), origin="http://evil.example")  # type: ignore[arg-type]
        assert info.value.response.status_code == 403

    asyncio.run(main())


def test_unknown_path_is_404(app: App) -> None:
    async def main() -> None:
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{app.port}/other")
        assert info.value.response.status_code == 404

    asyncio.run(main())


def test_frame_over_4_kib_closes_with_1009(app: App) -> None:
    async def main() -> None:
        async with await link(app) as ws:
            await recv(ws)
            await ws.send(json.dumps({"type": "status", "pad": "x" * 5 * 1024}))
            with pytest.raises(ConnectionClosed):
                while True:
                    await recv(ws)
            assert ws.close_code == 1009

    asyncio.run(main())


BAD_MESSAGES = [
    "{not json",
    '{"type": "status", "rssi": "loud", "heap": 1, "uptime": 1}',
    '{"type": "status", "rssi": -50, "heap": 1, "uptime": NaN}',
    '{"type": "teleport"}',
]


def test_bad_messages_get_errors_and_other_devices_keep_receiving(
    app: App, sources: dict[str, SettableSource]
) -> None:
    async def main() -> None:
        async with await link(app) as bad, await link(app, id="dev-b") as good:
            await recv_until(bad, "cpu")
            await recv_until(good, "cpu")
            for value, text in enumerate(BAD_MESSAGES):
                await bad.send(text)
                error = await recv_until(bad, "error")
                assert error["reason"]
                # a valid message in between resets the bad-message count
                await bad.send('{"type": "status", "rssi": -40, "heap": 1000, "uptime": 3}')
                sources["cpu"].value = 20.0 + value
                sample = await recv_until(good, "cpu")
                assert sample["value"] == pytest.approx(20.0 + value, abs=1)
            await bad.send(json.dumps({"type": "button", "event": "double"}))
            assert (await recv_until(bad, "error"))["reason"]
            assert bad.state.name == "OPEN"

    asyncio.run(main())


def test_five_bad_messages_in_a_row_close_with_1008(app: App) -> None:
    async def main() -> None:
        async with await link(app) as ws:
            await recv(ws)
            for _ in range(5):
                await ws.send("{")
            with pytest.raises(ConnectionClosed):
                while True:
                    await recv(ws)
            assert ws.close_code == 1008

    asyncio.run(main())


def test_first_message_must_be_hello(app: App) -> None:
    async def main() -> None:
        async with connect(url(app)) as ws:
            await ws.send('{"type": "button", "event": "press"}')
            error = await recv(ws)
            assert error["type"] == "error"
            with pytest.raises(ConnectionClosed):
                await recv(ws)
            assert ws.close_code == 1008

    asyncio.run(main())


def test_silence_instead_of_hello_closes(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "HELLO_TIMEOUT_S", 0.3)

    async def main() -> None:
        async with connect(url(app)) as ws:
            with pytest.raises(ConnectionClosed):
                await recv(ws)
            assert ws.close_code == 1008

    asyncio.run(main())


def test_heartbeat_resends_an_unchanged_value(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "HEARTBEAT_S", 0.4)

    async def main() -> None:
        async with await link(app) as ws:
            await recv(ws)
            values = [(await recv_until(ws, "cpu"))["value"] for _ in range(3)]
            assert values == [12.3, 12.3, 12.3]

    asyncio.run(main())


def test_small_moves_are_not_sent_but_real_moves_are(
    app: App, sources: dict[str, SettableSource]
) -> None:
    async def main() -> None:
        async with await link(app) as ws:
            await recv_until(ws, "cpu")
            sources["cpu"].value = 12.33  # under 0.1: not worth a frame
            await asyncio.sleep(scaled(0.5))
            sources["cpu"].value = 13.0
            sample = await recv_until(ws, "cpu")
            assert sample["value"] == 13.0

    asyncio.run(main())


def test_button_press_cycles_this_devices_metric(app: App) -> None:
    app.set_metric("cpu", "dev-a")  # the user set dev-a up; dev-b was only paired

    async def main() -> None:
        async with await link(app) as ws, await link(app, id="dev-b") as other:
            await recv_until(ws, "cpu")
            await recv_until(other, "cpu")
            await ws.send('{"type": "button", "event": "press"}')
            assert (await recv_until(ws, "ram"))["value"] == 40.0
            # vram is unavailable, so the next press skips it and wraps to cpu
            await ws.send('{"type": "button", "event": "press"}')
            await recv_until(ws, "cpu")
            # a paired meter's press is its own, and kept (only paired meters link at all)
            await other.send('{"type": "button", "event": "press"}')
            await recv_until(other, "ram")
            assert app.on_loop(lambda: app.hub.metric_for("dev-b")) == "ram"
        assert app.store.settings.devices["dev-a"].metric == "cpu"
        async with asyncio.timeout(scaled(5)):
            while "dev-b" not in app.store.settings.devices:
                await asyncio.sleep(0.05)
        assert app.store.settings.devices["dev-b"].metric == "ram"

    asyncio.run(main())


def test_unavailable_metric_parks_the_needle(app: App) -> None:
    app.set_metric("vram", "dev-a")

    async def main() -> None:
        async with await link(app) as ws:
            welcome = await recv(ws)
            assert welcome["needles"] == ["vram"]
            park = await recv_until(ws, "park")
            assert park["reason"] == "unavailable"

    asyncio.run(main())


def test_global_metric_change_reaches_devices(app: App) -> None:
    async def main() -> None:
        async with await link(app) as ws:
            await recv_until(ws, "cpu")
            await asyncio.to_thread(app.set_metric, "ram")
            assert (await recv_until(ws, "ram"))["value"] == 40.0

    asyncio.run(main())


def test_calibration_is_acked_and_kept(app: App) -> None:
    async def main() -> None:
        async with await link(app) as ws:
            await recv_until(ws, "cpu")
            points = ((0.0, 0.0), (50.0, 0.45), (100.0, 0.98))
            pending = asyncio.create_task(asyncio.to_thread(app.calibrate, "dev-a", points))
            message = await recv_until(ws, "calibration")
            assert message["points"] == [list(p) for p in points]
            await ws.send('{"type": "ack", "of": "calibration"}')
            assert await pending == "dev-a"
        assert app.store.settings.devices["dev-a"].calibration == points

    asyncio.run(main())


def test_stop_parks_and_closes_with_1001(sources: dict[str, SettableSource]) -> None:
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(json.dumps({"metric": "vram"}))  # chosen, though unreadable
    running = App(paths, sources=sources, port=0, interval=0.1, advertise=False)
    running.start()

    async def main() -> None:
        async with await link(running) as ws:
            await recv(ws)
            await asyncio.to_thread(running.stop)
            reasons = [(await recv_until(ws, "park"))["reason"] for _ in range(2)]
            # vram (the chosen metric) is unavailable here, then the app quits
            assert reasons == ["unavailable", "quit"]
            with pytest.raises(ConnectionClosed):
                while True:
                    await recv(ws)
            assert ws.close_code == 1001

    asyncio.run(main())


def test_taken_port_falls_back_to_a_free_one(sources: dict[str, SettableSource]) -> None:
    blocker = socket.socket()
    blocker.bind(("0.0.0.0", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(json.dumps({"port": taken}))  # not named by the user
    running = App(paths, sources=sources, interval=0.1, advertise=False)
    try:
        running.start()
        assert running.port not in (0, taken)
        state = json.loads(running.paths.state_file.read_text())
        assert state["port"] == running.port
    finally:
        running.stop()
        blocker.close()
    assert not running.paths.state_file.exists()
