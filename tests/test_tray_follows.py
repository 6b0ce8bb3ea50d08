"""The tray menu follows changes made outside it, with a fake pystray icon.

pystray's Windows backend builds its menu once and rebuilds it only on
`update_menu()`: a metric chosen with `sysboy metric`, a pushed metric, the start-up
switch flipped in Task Manager or a device linking must each call it. The icon is the
faked boundary (it records update_menu and notify); the app, the control API, the
menu and the start-at-login file are real.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray.app import App
from sysboy_tray.autostart import XdgAutostartFile
from sysboy_tray.control_client import ControlClient
from sysboy_tray.tray import icon as icon_module
from sysboy_tray.tray.backend import TrayToolkit, load_tray
from sysboy_tray.tray.icon import TrayIcon
from sysboy_tray.tray.menu import TrayMenu
from tests.conftest import SettableSource, running_app, scaled
from tests.meter import Meter


class FakeIcon:
    """What TrayIcon uses of a pystray icon, recording menu rebuilds and notifications."""

    def __init__(self, name: str, image: Any, title: str, menu: Any) -> None:
        self.name, self.icon, self.title, self.menu = name, image, title, menu
        self.visible = False
        self.menu_updates = 0
        self.notified: list[tuple[str, str]] = []
        self._stopped = threading.Event()

    def update_menu(self) -> None:
        self.menu_updates += 1

    def notify(self, message: str, title: str | None = None) -> None:
        self.notified.append((title or "", message))

    def run(self, setup: Callable[[Any], None]) -> None:
        setup(self)
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()


def until(check: Callable[[], object], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def app() -> Iterator[App]:
    sources = {"cpu": SettableSource("cpu", 12.0), "ram": SettableSource("ram", 40.0)}
    with running_app(sources, {"metric": "cpu"}) as running:
        yield running


@pytest.fixture
def toolkit(monkeypatch: pytest.MonkeyPatch) -> TrayToolkit:
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    # pystray's menu classes, with the icon of a backend that has a menu and notifications
    return dataclasses.replace(
        load_tray(), name="fake", Icon=FakeIcon, has_menu=True, has_notification=True
    )


def test_update_menu_after_every_outside_change(
    app: App, toolkit: TrayToolkit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icon_module, "LOOK_AGAIN_S", 0.2)
    autostart = XdgAutostartFile([sys.executable, "-m", "sysboy_tray"], tmp_path / "xdg")
    menu = TrayMenu(
        app,
        toolkit,
        autostart,
        open_calibration=print,
        open_folder=print,
        show_about=print,
        quit=print,
    )
    tray = TrayIcon(app, toolkit, menu)
    fake: FakeIcon = tray.icon
    runner = threading.Thread(target=tray.run, daemon=True)
    runner.start()
    try:
        until(lambda: fake.menu_updates >= 1, "the first menu build")
        time.sleep(0.5)  # readings that did not change the menu rebuild nothing
        count = fake.menu_updates

        def changed(what: str) -> None:
            nonlocal count
            until(lambda: fake.menu_updates > count, f"update_menu() after {what}")
            count = fake.menu_updates

        with ControlClient.find() as client:
            client.set_metric("ram")  # `sysboy metric ram`
            changed("a metric chosen outside the menu")
            client.push("build", 40.0, "", "Build")  # `sysboy push build 40`
            changed("a push")
        autostart.enable()  # as Task Manager or another copy would, behind the menu's back
        changed("start at login turned on outside the menu")
        autostart.disable()
        changed("start at login turned off outside the menu")
        with Meter(app.port, "dev-a") as meter:
            meter.wait_for("ram")
            changed("a device linking")
        changed("a device leaving")
        app.set_interval(2.0)
        changed("a new update rate")
        time.sleep(0.5)
        assert fake.menu_updates == count  # and nothing else rebuilt it
    finally:
        tray.stop()
        runner.join(scaled(5))


def test_notices_become_notifications(
    app: App, toolkit: TrayToolkit, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sysboy_tray.autostart import NoAutostart

    menu = TrayMenu(
        app,
        toolkit,
        NoAutostart(),
        open_calibration=print,
        open_folder=print,
        show_about=print,
        quit=print,
    )
    tray = TrayIcon(app, toolkit, menu)
    fake: FakeIcon = tray.icon
    tray.tell("told before the icon shows")
    runner = threading.Thread(target=tray.run, daemon=True)
    runner.start()
    try:
        until(lambda: fake.notified, "the first notification")
        app.notice("Sysboy cannot save its settings")
        until(lambda: len(fake.notified) == 2, "the notice")
        assert fake.notified == [
            ("Sysboy", "told before the icon shows"),
            ("Sysboy", "Sysboy cannot save its settings"),
        ]
    finally:
        tray.stop()
        runner.join(scaled(5))


def test_a_blocking_firewall_is_told_once(
    toolkit: TrayToolkit, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from sysboy_tray.autostart import NoAutostart
    from sysboy_tray.firewall import windows
    from sysboy_tray.tray.icon import FIREWALL_TITLE
    from tests.test_firewall import FakePowerShell, answer

    powershell = FakePowerShell(answer("public_block_rule"))
    monkeypatch.setattr(subprocess, "run", powershell)
    app = App(
        sources={"cpu": SettableSource("cpu", 12.0)},
        port=0,
        advertise=False,
        firewall=windows.WindowsFirewall([r"C:\sysboy\sysboy.exe"]),
    )
    app.start()
    tray = TrayIcon(
        app,
        toolkit,
        TrayMenu(
            app,
            toolkit,
            NoAutostart(),
            open_calibration=print,
            open_folder=print,
            show_about=print,
            quit=print,
        ),
    )
    fake: FakeIcon = tray.icon
    runner = threading.Thread(target=tray.run, daemon=True)
    runner.start()
    try:
        until(lambda: fake.notified, "the firewall notification")
        ((title, message),) = fake.notified
        assert title == FIREWALL_TITLE
        assert message.startswith("A firewall rule (sysboy.exe) blocks Sysboy on this Public")
        assert message.endswith("choose Allow meters on this network…")
        app.set_interval(2.0)  # later changes do not repeat it
        time.sleep(0.5)
        assert len(fake.notified) == 1
        # the user chose Allow meters on this network… and said yes at the prompt
        powershell.stdout = answer("private_allowed")
        app._firewall._wake.set()  # type: ignore[union-attr]  # the next look, now
        until(lambda: len(fake.notified) == 2, "the all-clear")
        assert fake.notified[1] == (
            "Sysboy",
            "Windows Firewall lets meters in on this Private network (Ethernet).",
        )
    finally:
        tray.stop()
        runner.join(scaled(5))
        app.stop()
