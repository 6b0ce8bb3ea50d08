"""The control API at /control over live sockets: who may connect, and every op."""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from sysboy_tray.advertise import lan_addresses
from sysboy_tray.app import App
from sysboy_tray.config import Paths
from sysboy_tray.control import NONCE_HEADER, new_token, proof
from sysboy_tray.control_client import ControlClient
from sysboy_tray.errors import ControlError, NotRunning
from tests.conftest import SettableSource, running_app, scaled
from tests.meter import Meter


@pytest.fixture
def sources() -> dict[str, SettableSource]:
    return {
        "cpu": SettableSource("cpu", 12.3, label="CPU"),
        "ram": SettableSource("ram", 40.0, label="RAM"),
        "vram": SettableSource("vram", None, label="VRAM"),
    }


# how long a push lasts: longer than a loaded machine takes from the push to the status
PUSH_TTL_S = scaled(3)


@pytest.fixture
def app(sources: dict[str, SettableSource]) -> Iterator[App]:
    with running_app(sources, {"metric": "cpu", "custom_ttl_s": PUSH_TTL_S}) as running:
        yield running


@pytest.fixture
def client(app: App) -> Iterator[ControlClient]:
    with ControlClient.find(timeout=scaled(5)) as control:
        yield control


def token() -> str:
    return Paths.default().token_file.read_text()


def nonce() -> dict[str, str]:
    return {NONCE_HEADER: secrets.token_hex(32)}


@contextmanager
def open_control(port: int) -> Iterator[ClientConnection]:
    """A control connection through the handshake by hand: the app's proof, then ours."""
    ours = secrets.token_hex(32)
    with connect(
        f"ws://127.0.0.1:{port}/control",
        additional_headers={NONCE_HEADER: ours},
        open_timeout=scaled(5),
    ) as ws:
        first = json.loads(ws.recv(scaled(5)))
        assert first["proof"] == proof(token(), "app", ours, first["nonce"])
        ws.send(json.dumps({"op": "auth", "proof": proof(token(), "client", first["nonce"], ours)}))
        assert json.loads(ws.recv(scaled(5))) == {"ok": True}
        yield ws


def refusal(url: str, headers: dict[str, str], origin: str | None = None) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        connect(
            url,
            additional_headers=headers,
            origin=origin,  # type: ignore[arg-type]
            open_timeout=scaled(5),
        )
    response = info.value.response
    return response.status_code, response.body.decode() if response.body else ""


# -- who may connect -------------------------------------------------------------------


def test_token_file_is_private_random_hex_and_new_at_each_start(
    sources: dict[str, SettableSource],
) -> None:
    tokens = []
    for _ in range(2):
        with running_app(sources, {"metric": "cpu"}) as running:
            path = running.paths.token_file
            text = path.read_text()
            assert len(text) == 64 and int(text, 16) > 0
            if os.name == "posix":
                assert stat.S_IMODE(path.stat().st_mode) == 0o600
            with ControlClient.find(timeout=scaled(5)) as control:
                assert control.status().port == running.port
            tokens.append(text)
    assert tokens[0] != tokens[1]
    assert new_token(path) not in tokens


def test_without_a_nonce_or_the_token_nothing_is_answered(app: App) -> None:
    url = f"ws://127.0.0.1:{app.port}/control"
    status, body = refusal(url, {})
    assert status == 403 and NONCE_HEADER in body
    assert refusal(url, {NONCE_HEADER: "12"})[0] == 403
    # a client without the token: the app proves itself, the client cannot, and is let go
    ours = secrets.token_hex(32)
    with connect(url, additional_headers={NONCE_HEADER: ours}) as ws:
        first = json.loads(ws.recv(scaled(5)))
        assert set(first) == {"nonce", "proof"}
        ws.send(json.dumps({"op": "auth", "proof": "0" * 64}))
        assert "wrong proof" in json.loads(ws.recv(scaled(5)))["error"]
        with pytest.raises(ConnectionClosed):
            ws.recv(scaled(5))
        assert ws.close_code == 1008
    # a request before the proof is refused the same way, and not answered
    with connect(url, additional_headers=nonce()) as ws:
        ws.recv(scaled(5))
        ws.send('{"op": "status"}')
        assert json.loads(ws.recv(scaled(5)))["ok"] is False
        with pytest.raises(ConnectionClosed):
            ws.recv(scaled(5))
    with open_control(app.port) as ws:
        ws.send('{"op": "status"}')
        assert json.loads(ws.recv(scaled(5)))["ok"] is True


def test_browser_origin_is_refused_even_with_the_token(app: App) -> None:
    url = f"ws://127.0.0.1:{app.port}/control"
    headers = nonce()
    for origin in ("http://evil.example", "null", "http://127.0.0.1"):
        assert refusal(url, headers, origin)[0] == 403


def test_peer_that_is_not_this_pcs_loopback_is_refused(app: App) -> None:
    lan = next((a for a in lan_addresses() if not a.startswith("127.")), None)
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    status, body = refusal(f"ws://{lan}:{app.port}/control", nonce())
    assert status == 403 and "this PC" in body
    # the same address reaches /device: it is the control gate that refused
    with connect(f"ws://{lan}:{app.port}/device", open_timeout=scaled(5)) as ws:
        ws.send('{"type": "status", "rssi": -40, "heap": 1, "uptime": 1}')
        assert json.loads(ws.recv(scaled(5)))["type"] == "error"  # hello expected first


def test_client_says_the_app_is_not_running(user_dirs: Path) -> None:
    with pytest.raises(NotRunning, match="Sysboy is not running"):
        ControlClient.find()
    # a state file left by a crashed app, pointing at a dead port
    paths = Paths.default()
    new_token(paths.token_file)
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    paths.state_file.write_text(json.dumps({"port": dead}))
    with pytest.raises(NotRunning, match="Sysboy is not running"):
        ControlClient.find()


# -- requests ----------------------------------------------------------------------------


def test_bad_requests_get_sentences_and_the_connection_survives(app: App) -> None:
    with open_control(app.port) as ws:
        for frame, words in [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "JSON object"),
            ('{"op": "fly"}', "unknown op"),
            (b"\x00\x01", "binary"),
            ('{"op": "metric", "metric": 5}', "metric name"),
            ('{"op": "needle", "value": 2}', "between 0 and 1"),
            ('{"op": "needle", "value": 0.5}', "no device is connected"),
            ('{"op": "push", "name": "x", "value": "high"}', "finite number"),
            ('{"op": "push", "name": "cpu", "value": 1}', "cannot be used"),
            ('{"op": "calibrate", "points": [[0, 0]]}', "2 to 11 points"),
            ('{"op": "metric", "metric": "nope", "id": 7}', "there is no metric 'nope'"),
        ]:
            ws.send(frame)
            reply = json.loads(ws.recv(scaled(5)))
            assert reply["ok"] is False and words in reply["error"], (frame, reply)
        assert reply["id"] == 7
        ws.send('{"op": "status"}')
        assert json.loads(ws.recv(scaled(5)))["ok"] is True


def test_status_lists_devices_metrics_and_where_it_listens(app: App, client: ControlClient) -> None:
    with Meter(app.port, "dev-a", name="Desk meter") as meter:
        meter.wait_for("cpu")
        status = client.status()
    assert status.port == app.port and status.version
    assert status.addresses and status.metric == "cpu"
    (device,) = status.devices
    assert (device.id, device.name, device.address, device.metric) == (
        "dev-a",
        "Desk meter",
        "127.0.0.1",
        "cpu",
    )
    metrics = {m.id: m for m in status.metrics}
    assert metrics["cpu"].available and metrics["cpu"].live
    assert metrics["cpu"].value == pytest.approx(12.3)
    assert not metrics["vram"].available and metrics["vram"].reason == "sensor unplugged"


def test_global_and_per_device_metric(app: App, client: ControlClient) -> None:
    with Meter(app.port, "dev-a") as a, Meter(app.port, "dev-b") as b:
        a.wait_for("cpu")
        b.wait_for("cpu")
        client.set_metric("ram", "dev-a")
        assert a.wait_for("ram")[0]["value"] == 40.0
        client.set_metric("vram")  # global: dev-b follows, dev-a keeps its own choice
        b.wait_for("park")
        assert not a.of_type("park") and not b.of_type("ram")
        assert {d.id: d.metric for d in client.status().devices} == {
            "dev-a": "ram",
            "dev-b": "vram",
        }
    with pytest.raises(ControlError, match="there is no metric 'nope'"):
        client.set_metric("nope")


def test_needle_sweep_identify_reach_the_device_and_raw_mode_ends_with_the_client(
    app: App,
) -> None:
    with Meter(app.port, "dev-a") as meter:
        meter.wait_for("cpu")
        with ControlClient.find() as control:
            assert control.needle(0.25) == "dev-a"
            control.sweep("dev-a")
            control.identify()
            meter.wait_for("identify")
            with pytest.raises(ControlError, match="device 'ghost' is not connected"):
                control.needle(0.5, "ghost")
        # the client left without ending raw mode: the app ends it for the device
        meter.wait_until(lambda ms: {"type": "needle", "value": None} in ms)
        kinds = [m["type"] for m in meter.messages if m["type"] not in ("cpu", "welcome")]
        assert kinds == ["needle", "sweep", "identify", "needle"]
        assert meter.of_type("needle")[0]["value"] == 0.25


def test_calibrate_waits_for_the_ack_and_keeps_a_copy(app: App, client: ControlClient) -> None:
    points = ((0.0, 0.0), (50.0, 0.47), (100.0, 0.97))
    with Meter(app.port, "dev-a", calibration=[[0, 0.01], [100, 0.99]]) as meter:
        meter.wait_for("cpu")
        assert client.calibration().points == ((0.0, 0.01), (100.0, 0.99))
        assert client.calibrate(points) == "dev-a"
        assert meter.of_type("calibration")[-1]["points"] == [list(p) for p in points]
        now = client.calibration("dev-a")
        assert now.points == points and now.saved == points
    assert app.store.settings.devices["dev-a"].calibration == points


def test_calibrate_without_ack_is_an_error_in_words(
    app: App, client: ControlClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sysboy_tray import session

    original = session.DeviceSession.command

    async def quick(self: session.DeviceSession, message: object, timeout: float = 5.0) -> None:
        await original(self, message, timeout=scaled(0.3))  # type: ignore[arg-type]

    monkeypatch.setattr(session.DeviceSession, "command", quick)
    with Meter(app.port, "dev-a", ack=False) as meter:
        meter.wait_for("cpu")
        with pytest.raises(ControlError, match="did not confirm the calibration"):
            client.calibrate(((0.0, 0.0), (100.0, 0.9)))
    assert "dev-a" not in app.store.settings.devices


def test_pushed_metric_reaches_a_device_and_expires(app: App, client: ControlClient) -> None:
    with Meter(app.port, "dev-a") as meter:
        meter.wait_for("cpu")
        assert client.push("build", 42, unit="%", label="Build") == PUSH_TTL_S  # its TTL
        client.set_metric("build", "dev-a")
        sample = meter.wait_for("build")[0]
        assert (sample["value"], sample["label"]) == (42.0, "Build")
        metrics = {m.id: m for m in client.status().metrics}
        assert metrics["build"].pushed and metrics["build"].value == 42.0
        # not pushed again within custom_ttl_s: the needle parks
        meter.wait_for("park", timeout=PUSH_TTL_S + 5)
        reason = {m.id: m for m in client.status().metrics}.get("build")
        assert reason is None or not reason.available
