"""A firmware update from the running app to a meter, over a real loopback link.

The meter is a real `websockets` client whose flash is a folder and whose update code is
the firmware's own (ota.py and slots.py, run on CPython): it starts the version its
pointer names, says it in its hello, takes the update chunk by chunk and restarts into it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from sysboy_tray.app import App
from sysboy_tray.commands.status import describe
from sysboy_tray.control_client import ControlClient
from sysboy_tray.firmware_tool import build
from sysboy_tray.tray.icon import tooltip
from sysboy_tray.tray.menu import device_text
from sysboy_tray.updater import LAUNCHER, SEND_BYTES, UpdateState
from tests.conftest import SettableSource, running_app, scaled
from tests.firmware.upy import FIRMWARE
from tests.test_control_cli import sysboy


def _firmware(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, FIRMWARE / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # ota.py imports slots by this name
        spec.loader.exec_module(module)
    return module


slots = _firmware("slots")
pointer = _firmware("pointer")
ota = _firmware("ota")

try:  # protocol v2's handshake, as a USB-paired meter proves its key
    from tests import handshake  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # a link before the handshake: the hello alone
    handshake = None


class UpdatingMeter:
    """A meter on its own thread, restarting (a new connection) when its firmware says so."""

    def __init__(
        self,
        port: int,
        flash: Path,
        *,
        drop_after: int | None = None,
        crash_on: str = "",
        update_mode: bool | str = False,
    ) -> None:
        self.url = f"ws://127.0.0.1:{port}/device"
        self.flash = flash
        (flash / "manifest.json").write_text(json.dumps({"firmware_version": "0.1.0"}))
        self.drop_after = drop_after  # chunks taken before the link drops, once
        self.crash_on = crash_on  # a version that fails at every start
        # as the firmware does: a manifest on a linked meter restarts it (1012) into its
        # update mode, which takes the files ("never": a meter that restarts and never does)
        self.update_mode = update_mode
        self.updating = False
        self.chunks = 0  # chunks written
        self.starts: list[str] = []  # the version of each start
        self.said: list[dict[str, Any]] = []  # every update_status sent
        self.begins: list[dict[str, Any]] = []  # the answers to each manifest
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        receiver = None
        while not self._stop.is_set():
            pointer.boot(str(self.flash))
            self.starts.append(slots.running)
            if slots.running == self.crash_on:
                continue  # it fails before it links: the board resets
            with connect(self.url, open_timeout=scaled(5)) as ws:
                self._say_hello(ws)
                note = slots.note()  # the link is proven now
                if note is not None:
                    self._send(ws, dict(note))
                    slots.noted(str(self.flash))
                receiver = receiver or ota.Receiver(str(self.flash))
                if self._serve(ws, receiver):
                    receiver = None  # restarted: a new firmware, a new receiver
                    continue
            self._stop.wait(0.1)

    def _say_hello(self, ws: Any) -> None:
        if handshake is None:
            ws.send(json.dumps(self._hello()))
            return
        pairing = handshake.pair("meter1")
        mine = dict(handshake.hello("meter1", pairing), fw=slots.running)
        ws.send(json.dumps(mine))
        theirs = json.loads(ws.recv(timeout=scaled(10)))
        ws.send(json.dumps(handshake.proof(mine, theirs, pairing)))

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "proto": 1,
            "id": "meter1",
            "fw": slots.running,
            "board": "sim",
            "output": "sim",
            "calibration": [[0, 0], [100, 1]],
        }

    def _send(self, ws: Any, status: dict[str, Any]) -> None:
        self.said.append(status)
        ws.send(json.dumps({"type": "update_status", **status}))

    def _serve(self, ws: Any, receiver: Any) -> bool:
        """Serve one link; True when the firmware restarts into a new version."""
        try:
            for text in ws:
                if self._stop.is_set():
                    return False
                msg = json.loads(text)
                if (
                    msg["type"] == "update"
                    and self.update_mode
                    and (not self.updating or self.update_mode == "never")
                ):
                    self.updating = True
                    ws.close(1012, "restarting to take the update")
                    self._stop.wait(1.0)  # a board's restart
                    return False
                if msg["type"] == "update":
                    status = receiver.begin(msg["version"], msg["files"])
                    self.begins.append(status)
                elif msg["type"] == "chunk":
                    if self.chunks == self.drop_after:
                        self.drop_after = None
                        return False  # the link drops: the connection closes
                    status = receiver.chunk(msg["file"], msg["offset"], msg["data"])
                    self.chunks += 1
                else:
                    continue
                self._send(ws, status)
                if status["state"] == "restarting":
                    return True
        except ConnectionClosed:
            pass
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(scaled(10))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    build(out, version="0.2.0")
    return out


@pytest.fixture
def app(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("SYSBOY_FIRMWARE_BUNDLE", str(bundle))
    slots.state = slots.running = None
    sources = {"cpu": SettableSource("cpu", 12.3, label="CPU")}
    with running_app(sources, {"metric": "cpu"}) as running:
        yield running


def wait(check: Any, what: str, timeout: float = 30) -> None:
    done = threading.Event()
    deadline = scaled(timeout)
    while not done.wait(0.05):
        if check():
            return
        deadline -= 0.05
        if deadline <= 0:
            raise AssertionError(f"timed out waiting for {what}")


def update_meter1(app: App, what: str = "the update to finish") -> UpdateState:
    """Update meter1 once it links; its update, once finished."""
    wait(lambda: app.devices(), "the meter to link")
    app.update_firmware("meter1")
    wait(lambda: app.updates()["meter1"].finished, what, 60)
    return app.updates()["meter1"]


def flash_files(flash: Path) -> dict[str, bytes]:
    return {
        p.relative_to(flash).as_posix(): p.read_bytes() for p in flash.rglob("*") if p.is_file()
    }


def test_a_meter_on_0_1_0_is_updated_and_reports_the_new_version(
    app: App, bundle: Path, tmp_path: Path
) -> None:
    meter = UpdatingMeter(app.port, tmp_path)
    try:
        wait(lambda: app.devices(), "the meter to link")
        (view,) = app.devices()
        assert view.fw == "0.1.0" and view.update_available
        assert device_text(view).endswith("— Update available")
        with ControlClient.find(timeout=scaled(5)) as client:
            status = client.status()
            assert "firmware update available: 0.2.0" in "\n".join(describe(status))
            device, version = client.update_firmware()
            assert (device, version) == ("meter1", "0.2.0")
            wait(lambda: app.updates()["meter1"].finished, "the update to finish", 60)
            assert app.updates()["meter1"].state == "done"
            (view,) = app.devices()
            assert view.fw == "0.2.0" and not view.update_available
            lines = "\n".join(describe(client.status()))
        assert "fw 0.2.0" in lines and "firmware: updated to 0.2.0" in lines
        assert meter.starts == ["0.1.0", "0.2.0"]
        assert meter.said[-1] == {"state": "confirmed", "version": "0.2.0"}
        # every chunk was acknowledged with the next byte wanted, and written once
        sent = sent_files(bundle)
        assert meter.chunks == sum(-(-e["size"] // SEND_BYTES) for e in sent)
        for entry in sent:
            written = (tmp_path / "ota" / "a" / entry["path"]).read_bytes()
            assert written == (bundle / entry["path"]).read_bytes()
    finally:
        meter.close()


def sent_files(bundle: Path) -> list[dict[str, Any]]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return [e for e in manifest["files"] if e["path"] not in LAUNCHER]


def test_an_interrupted_transfer_resumes_where_it_stopped(
    app: App, bundle: Path, tmp_path: Path
) -> None:
    meter = UpdatingMeter(app.port, tmp_path, drop_after=40)
    try:
        assert update_meter1(app).state == "done"
        assert meter.starts == ["0.1.0", "0.1.0", "0.2.0"]  # the drop, then the restart
        first, again = meter.begins
        assert first == {"state": "receiving", "file": sent_files(bundle)[0]["path"], "offset": 0}
        assert again != first  # the meter said where it stopped, after 40 chunks
        # no chunk was written twice: 40 before the drop, the rest after it
        assert meter.chunks == sum(-(-e["size"] // SEND_BYTES) for e in sent_files(bundle))
    finally:
        meter.close()


def test_a_meter_that_restarts_into_its_update_mode_is_sent_the_manifest_again(
    app: App, bundle: Path, tmp_path: Path
) -> None:
    meter = UpdatingMeter(app.port, tmp_path, update_mode=True)
    try:
        wait(lambda: app.devices(), "the meter to link")
        app.update_firmware("meter1")
        wait(lambda: meter.updating, "the meter to restart into its update mode")
        wait(lambda: app.updates()["meter1"].state == "preparing", "the app to say so")
        assert app.updates()["meter1"].text() == (
            "updating to 0.2.0: the meter restarts to take it"
        )
        wait(lambda: app.updates()["meter1"].finished, "the update to finish", 60)
        assert app.updates()["meter1"].state == "done"
        assert meter.begins[0] == {
            "state": "receiving",
            "file": sent_files(bundle)[0]["path"],
            "offset": 0,
        }
        assert len(meter.begins) == 1  # the manifest again, once, to update mode
        assert meter.chunks == sum(-(-e["size"] // SEND_BYTES) for e in sent_files(bundle))
    finally:
        meter.close()


def test_a_meter_that_restarts_again_and_again_without_taking_the_update_fails_it(
    app: App, tmp_path: Path
) -> None:
    meter = UpdatingMeter(app.port, tmp_path, update_mode="never")
    try:
        update = update_meter1(app, "the update to give up")
        assert update.state == "failed"
        assert update.detail == "the meter restarted 3 times to take the update and took nothing"
        assert meter.begins == [] and meter.chunks == 0
        # its version stays through each restart (this stand-in restarts by linking again)
        assert set(meter.starts) == {"0.1.0"} and len(meter.starts) >= 3
    finally:
        meter.close()


def test_the_tooltip_shows_the_update_under_way() -> None:
    text = tooltip("CPU", None, 1, "meter1: updating to 0.2.0: 45 %")
    assert text.startswith("meter1: updating to 0.2.0: 45 % · CPU")


def test_a_new_version_that_fails_to_start_is_rolled_back_and_the_pc_is_told(
    app: App, tmp_path: Path
) -> None:
    meter = UpdatingMeter(app.port, tmp_path, crash_on="0.2.0")
    try:
        update = update_meter1(app)
        assert update.state == "rolled back"
        assert update.detail == (
            "the meter went back to its previous version: it did not start 3 times in a row"
        )
        assert meter.starts == ["0.1.0", "0.2.0", "0.2.0", "0.2.0", "0.1.0"]
        (view,) = app.devices()
        assert view.fw == "0.1.0" and view.update_available  # it may be tried again
        with ControlClient.find(timeout=scaled(5)) as client:
            lines = "\n".join(describe(client.status()))
        assert "firmware: update to 0.2.0 rolled back: the meter went back" in lines
    finally:
        meter.close()


def test_a_bundle_with_one_wrong_hash_is_refused_and_the_meter_says_why(
    app: App, tmp_path: Path
) -> None:
    meter = UpdatingMeter(app.port, tmp_path)
    try:
        wait(lambda: app.devices(), "the meter to link")
        good = app.updater._bundle()
        hashes = dict(good.hashes, **{"link.mpy": "0" * 64})
        # the manifest lies about one file, as a damaged bundle would
        app.updater._bundle = lambda: dataclasses.replace(good, hashes=hashes)
        update = update_meter1(app)
        assert update.state == "failed"
        assert update.detail == (
            "the meter refused it: link.mpy does not match its SHA-256 in the manifest"
        )
        assert meter.starts == ["0.1.0"]  # no restart: it runs its version still
        assert not (tmp_path / "ota" / "a").exists()  # the staged files are gone
        (view,) = app.devices()
        assert view.fw == "0.1.0"
    finally:
        meter.close()


def test_sysboy_firmware_update_draws_a_progress_bar_and_status_shows_the_version(
    app: App, tmp_path: Path
) -> None:
    meter = UpdatingMeter(app.port, tmp_path)
    try:
        wait(lambda: app.devices(), "the meter to link")
        done = sysboy("firmware", "update", "meter1")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "updating meter1 to firmware 0.2.0"
        bars = [line for line in lines[1:] if line.startswith("[")]
        assert any("updating to 0.2.0:" in line and "#" in line for line in bars), lines
        assert bars[-1] == "[" + "#" * 30 + "] updated to 0.2.0"
        status = sysboy("status")
        assert status.returncode == 0, status.stderr
        assert "fw 0.2.0" in status.stdout and "firmware: updated to 0.2.0" in status.stdout
        again = sysboy("firmware", "update", "nometer")
        assert again.returncode == 1
        assert again.stderr.startswith("sysboy: ") and "nometer" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        meter.close()
