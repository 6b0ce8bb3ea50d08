"""The real tray menu (pystray menu objects) driving a real app and real device clients."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysboy_tray import protocol
from sysboy_tray.app import App
from sysboy_tray.metrics import Reading
from sysboy_tray.tray.backend import load_tray
from sysboy_tray.tray.gauge import GaugeState
from sysboy_tray.tray.icon import TrayIcon, face_for, tooltip
from sysboy_tray.tray.menu import TrayMenu
from tests.conftest import SettableSource, running_app, scaled
from tests.meter import Meter
from tests.tray_parts import dummy_menu, find


@pytest.fixture
def app() -> Iterator[App]:
    sources = {
        "cpu": SettableSource("cpu", 12.0),
        "ram": SettableSource("ram", 40.0),
        "vram": SettableSource("vram", None),
    }
    with running_app(sources, {"metric": "cpu"}) as running:
        yield running


class Launched:
    """Records what the menu asks to open (the process-spawning boundary)."""

    def __init__(self) -> None:
        self.calibrations: list[str | None] = []
        self.folders = 0
        self.abouts = 0
        self.quits = 0
        self.renames: list[str] = []


@pytest.fixture
def launched() -> Launched:
    return Launched()


@pytest.fixture
def menu(app: App, launched: Launched, tmp_path: Path) -> TrayMenu:
    return dummy_menu(
        app,
        tmp_path,
        open_calibration=launched.calibrations.append,
        open_folder=lambda: setattr(launched, "folders", launched.folders + 1),
        show_about=lambda: setattr(launched, "abouts", launched.abouts + 1),
        quit=lambda: setattr(launched, "quits", launched.quits + 1),
        rename=launched.renames.append,
    )


def click(menu: TrayMenu, *path: str) -> None:
    find(menu, *path)(None)


def test_picking_a_metric_changes_what_devices_receive(menu: TrayMenu, app: App) -> None:
    with Meter(app.port) as meter:
        meter.wait_for("cpu")
        assert find(menu, "Metric", "CPU").checked
        click(menu, "Metric", "RAM")
        assert meter.wait_for("ram")[-1]["value"] == 40.0
        assert find(menu, "Metric", "RAM").checked
        assert not find(menu, "Metric", "CPU").checked
    assert app.store.settings.metric == "ram"


def test_unavailable_metric_is_disabled_and_says_why(menu: TrayMenu) -> None:
    item = find(menu, "Metric", "VRAM")
    assert not item.enabled
    assert str(item.text) == "VRAM — sensor unplugged"
    assert find(menu, "Metric", "CPU").enabled


def test_a_long_reason_is_a_few_words_on_the_item() -> None:
    from sysboy_tray.metrics import NO_GPU, Unavailable
    from sysboy_tray.tray.menu import metric_text, short_reason

    sentence = "No GPU to read: the NVIDIA driver is not installed, and no AMD GPU was found."
    gpu = Unavailable("vram", sentence, NO_GPU).read()
    info = protocol.MetricInfo("vram", "VRAM", "%")
    assert metric_text(info, gpu) == "VRAM — no GPU found"
    other = Reading.unavailable("disk", "This PC does not report disk activity (no counters).")
    assert short_reason(other) == "this PC does not report disk ac…"
    assert len(short_reason(other)) <= 32


def test_a_device_metric_reaches_only_that_device(menu: TrayMenu, app: App) -> None:
    with Meter(app.port, "dev-a") as a, Meter(app.port, "dev-b") as b:
        a.wait_for("cpu")
        b.wait_for("cpu")
        devices = find(menu, "Devices")
        assert {str(i.text).split(" ")[0] for i in devices.submenu.items} == {"dev-a", "dev-b"}
        click(menu, "Devices", "dev-a", "Metric", "RAM")
        a.wait_for("ram")
        assert find(menu, "Devices", "dev-a", "Metric", "RAM").checked
        assert find(menu, "Devices", "dev-b", "Metric", "Same as the tray").checked
        b.wait_for("cpu", count=len(b.of_type("cpu")) + 1, timeout=8)  # heartbeat, still cpu
        assert not b.of_type("ram")
        click(menu, "Devices", "dev-a", "Metric", "Same as the tray")
        a.wait_until(lambda messages: messages[-1]["type"] == "cpu")
    assert app.store.settings.devices["dev-a"].metric is None


def test_a_pushed_value_reaches_a_device(menu: TrayMenu, app: App) -> None:
    with Meter(app.port) as meter:
        meter.wait_for("cpu")
        push = [sys.executable, "-m", "sysboy_tray", "push", "demo", "25", "--label", "Demo"]
        done = subprocess.run(push, capture_output=True, text=True, env=dict(os.environ))
        assert done.returncode == 0, done.stderr
        click(menu, "Devices", "dev-a", "Metric", "Demo")
        assert meter.wait_for("demo")[-1]["value"] == 25.0
        push[5] = "75"
        assert subprocess.run(push, capture_output=True).returncode == 0
        meter.wait_until(lambda m: m[-1]["type"] == "demo" and m[-1]["value"] == 75.0)


def test_device_actions(menu: TrayMenu, app: App, launched: Launched) -> None:
    with Meter(app.port) as meter:
        meter.wait_for("cpu")
        click(menu, "Devices", "dev-a", "Identify")
        meter.wait_for("identify")
        click(menu, "Sweep test")
        meter.wait_for("sweep")
        click(menu, "Calibrate needle")
        click(menu, "Devices", "dev-a", "Calibrate")
        assert launched.calibrations == ["dev-a", "dev-a"]
        click(menu, "Devices", "dev-a", "Metric", "RAM")
        meter.wait_for("ram")
        click(menu, "Devices", "dev-a", "Forget")
        assert "dev-a" not in app.store.settings.devices
        # its key is gone, and so is the link that key proved
        meter._thread.join(scaled(5))
        assert not meter._thread.is_alive() and meter.ws.close_code == 1008
        assert app.trust.pairs.key_for("dev-a") is None


def test_calibrate_asks_which_device_when_there_are_several(
    menu: TrayMenu, app: App, launched: Launched
) -> None:
    with Meter(app.port, "dev-a") as a, Meter(app.port, "dev-b"):
        a.wait_for("cpu")
        find(menu, "Devices")  # both linked
        which = find(menu, "Calibrate needle")
        assert which.submenu is not None
        click(menu, "Calibrate needle", "dev-b")
    assert launched.calibrations == ["dev-b"]


def test_without_devices_the_device_items_are_disabled(menu: TrayMenu) -> None:
    assert not find(menu, "Devices").enabled
    assert not find(menu, "Sweep test").enabled


def test_update_rate(menu: TrayMenu, app: App) -> None:
    click(menu, "Update rate", "2 s")
    assert app.sampler.interval == 2.0
    assert find(menu, "Update rate", "2 s").checked
    assert not find(menu, "Update rate", "1 s").checked
    app.store.flush()
    assert json.loads(app.paths.settings_file.read_text())["interval_s"] == 2.0


def test_start_at_login_shows_the_truth(menu: TrayMenu, tmp_path: Path) -> None:
    entry = tmp_path / "xdg" / "autostart" / "sysboy.desktop"
    assert not find(menu, "Start at login").checked
    click(menu, "Start at login")
    assert find(menu, "Start at login").checked
    desktop = configparser.ConfigParser(interpolation=None)
    desktop.read(entry)
    assert "sysboy_tray" in desktop["Desktop Entry"]["Exec"]
    entry.unlink()  # removed behind our back: the checkbox follows
    assert not find(menu, "Start at login").checked


def test_folder_about_and_quit(menu: TrayMenu, launched: Launched) -> None:
    click(menu, "Open log folder")
    click(menu, "About")
    click(menu, "Quit")
    assert (launched.folders, launched.abouts, launched.quits) == (1, 1, 1)


def test_icon_follows_the_app(menu: TrayMenu, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    icon = TrayIcon(app, load_tray(), menu)
    icon.refresh()
    assert icon.face is not None and icon.face.state is GaugeState.NO_DEVICE
    assert icon.icon.title == "CPU 12.0 % · 0 devices"
    with Meter(app.port) as meter:
        meter.wait_for("cpu")
        icon.refresh()
        assert icon.face.state is GaugeState.LINKED and icon.face.percent == 12.0
        assert icon.icon.title == "CPU 12.0 % · 1 device"
        drawn = icon.redraws
        icon.refresh()  # nothing moved: no redraw
        assert icon.redraws == drawn
        app.set_metric("vram")
        icon.refresh()
        assert icon.face.state is GaugeState.UNAVAILABLE
        assert icon.icon.title == "VRAM unavailable: sensor unplugged · 1 device"


def test_tooltip_and_face_rules() -> None:
    from sysboy_tray.metrics import Reading

    reading = Reading("vram", 60.5, raw=9912, unit="MiB", detail="9.7 / 16.0 GiB")
    assert tooltip("VRAM", reading, 1) == "VRAM 60.5 % (9.7 / 16.0 GiB) · 1 device"
    assert len(tooltip("X", Reading.unavailable("x", "y" * 300), 2)) <= 127
    assert face_for(None, 0).state is GaugeState.NO_DEVICE
    assert face_for(reading, 2).state is GaugeState.LINKED


def test_devices_go_by_their_own_name_until_renamed(
    menu: TrayMenu, app: App, launched: Launched
) -> None:
    with Meter(app.port, "02bd4e99029d", name="Bench") as meter:
        meter.wait_for("cpu")
        assert str(find(menu, "Devices", "Bench (").text).startswith("Bench (127.0.0.1")
        click(menu, "Devices", "Bench (", "Rename…")
        assert launched.renames == ["02bd4e99029d"]
        assert app.rename("bench", "Desk meter") == ("02bd4e99029d", "Desk meter")
        assert str(find(menu, "Devices", "Desk meter (").text).startswith("Desk meter (")
        assert app.store.settings.devices["02bd4e99029d"].name == "Desk meter"
        # an empty name gives it back its own
        assert app.rename("02bd4e99029d", "  ") == ("02bd4e99029d", "Bench")
