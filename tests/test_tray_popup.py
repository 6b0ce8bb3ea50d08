"""The Tk popup menu of the plain X11 tray icon, on a real X server with a real tray host."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageGrab

from sysboy_tray.config import Paths
from sysboy_tray.tray.backend import load_tray
from sysboy_tray.tray.popup import Popup, fill
from tests.conftest import scaled
from tests.debian import need
from tests.meter import Meter
from tests.xvfb import docked_icon, tray_app, wait_for, xvfb


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    need("xdotool", "python3-tk")  # every test on this display drives a Tk menu
    with xvfb() as name:
        yield name


@pytest.fixture
def pystray_menu(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """pystray's Menu and MenuItem (the same classes whatever the backend)."""
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    toolkit = load_tray()
    return toolkit.Menu, toolkit.MenuItem


def xdotool(display: str, *args: str) -> None:
    subprocess.run(
        ["xdotool", *args], env={**os.environ, "DISPLAY": display}, check=True, timeout=scaled(10)
    )


def shown_menus(display: str) -> list[tuple[int, int, int, int]]:
    """Where Tk menus are on screen now (x, y, width, height), bottom to top."""
    import Xlib.display
    import Xlib.X

    conn = Xlib.display.Display(display)
    try:
        found = []
        for window in conn.screen().root.query_tree().children:
            if window.get_wm_class() is None or window.get_wm_class()[1] != "Menu":
                continue
            if window.get_attributes().map_state != Xlib.X.IsViewable:
                continue
            box = window.get_geometry()
            found.append((box.x, box.y, box.width, box.height))
        return found
    finally:
        conn.close()


def grabbed(display: str) -> bool:
    """True while some client holds the pointer and keyboard, as Tk's popup does when up.

    Probed with a pointer grab, which Tk retries should it meet ours (its keyboard
    grab, right after its pointer grab, it does not).
    """
    import Xlib.display
    import Xlib.X

    conn = Xlib.display.Display(display)
    try:
        status = conn.screen().root.grab_pointer(
            False, 0, Xlib.X.GrabModeAsync, Xlib.X.GrabModeAsync, 0, 0, Xlib.X.CurrentTime
        )
        if status == Xlib.X.GrabSuccess:
            conn.ungrab_pointer(Xlib.X.CurrentTime)
            conn.sync()
        return bool(status == Xlib.X.AlreadyGrabbed)
    finally:
        conn.close()


def popup_ready(display: str) -> list[tuple[int, int, int, int]]:
    """The menus shown, once the popup is up and takes keys; else empty."""
    menus = shown_menus(display)
    return menus if menus and grabbed(display) else []


# -- the model as a Tk menu -----------------------------------------------------


def test_menu_model_becomes_a_tk_menu(display: str, pystray_menu: tuple[Any, Any]) -> None:
    Menu, MenuItem = pystray_menu
    ran: list[str] = []

    def action(name: str) -> Callable[[Any, Any], None]:
        return lambda icon, item: ran.append(f"{name} for {icon}")

    model = Menu(
        MenuItem("Plain", action("plain")),
        MenuItem("Greyed", action("greyed"), enabled=False),
        MenuItem("Hidden", action("hidden"), visible=False),
        Menu.SEPARATOR,
        Menu.SEPARATOR,  # pystray folds two separators into one
        MenuItem("Slow", action("slow"), checked=lambda item: False, radio=True),
        MenuItem("Fast", action("fast"), checked=lambda item: True, radio=True),
        MenuItem("Ticked", action("ticked"), checked=lambda item: True),
        MenuItem("Unticked", action("unticked"), checked=lambda item: False),
        MenuItem(
            "Rate",
            Menu(
                MenuItem("1 s", action("1 s"), checked=lambda item: True, radio=True),
                MenuItem("2 s", action("2 s"), checked=lambda item: False, radio=True),
            ),
        ),
        MenuItem("Empty", Menu(lambda: ())),  # an empty submenu is not shown
        MenuItem("Locked", Menu(MenuItem("inside", action("inside"))), enabled=False),
    )
    import tkinter

    root = tkinter.Tk(screenName=display)
    try:
        root.withdraw()
        menu = tkinter.Menu(root, tearoff=False)
        chosen: list[Any] = []
        keep: list[tkinter.Variable] = []
        fill(menu, model, chosen.append, keep)

        def entries(of: tkinter.Menu) -> list[tuple[str, str, str]]:
            last = of.index("end")
            assert last is not None
            return [
                (
                    of.type(i),
                    "" if of.type(i) == "separator" else of.entrycget(i, "label"),
                    "" if of.type(i) == "separator" else of.entrycget(i, "state"),
                )
                for i in range(last + 1)
            ]

        assert entries(menu) == [
            ("command", "Plain", "normal"),
            ("command", "Greyed", "disabled"),
            ("separator", "", ""),
            ("radiobutton", "Slow", "normal"),
            ("radiobutton", "Fast", "normal"),
            ("checkbutton", "Ticked", "normal"),
            ("checkbutton", "Unticked", "normal"),
            ("cascade", "Rate", "normal"),
            ("cascade", "Locked", "disabled"),
        ]

        def is_checked(of: tkinter.Menu, index: int) -> bool:
            value = root.globalgetvar(of.entrycget(index, "variable"))
            on = of.entrycget(index, "value" if of.type(index) == "radiobutton" else "onvalue")
            return str(value) == str(on)

        assert [is_checked(menu, i) for i in (3, 4, 5, 6)] == [False, True, True, False]
        rate = root.nametowidget(menu.entrycget(7, "menu"))
        assert entries(rate) == [
            ("radiobutton", "1 s", "normal"),
            ("radiobutton", "2 s", "normal"),
        ]
        assert [is_checked(rate, i) for i in (0, 1)] == [True, False]
        # the two radio groups are apart: the submenu's choice leaves the top level's alone
        assert rate.entrycget(0, "variable") != menu.entrycget(3, "variable")
        locked = root.nametowidget(menu.entrycget(8, "menu"))
        assert entries(locked) == [("command", "inside", "normal")]

        # choosing an entry hands back the model's own item, which runs its action
        menu.invoke(0)
        menu.invoke(3)
        rate.invoke(1)
        menu.invoke(1)  # disabled: Tk does not invoke it
        assert [item.text for item in chosen] == ["Plain", "Slow", "2 s"]
        for item in chosen:
            item("the icon")
        assert ran == ["plain for the icon", "slow for the icon", "2 s for the icon"]
        del keep[:]
    finally:
        root.destroy()


# -- the popup on its own thread --------------------------------------------------


class Recorder:
    """A menu whose items record which thread ran them and whether the popup was gone."""

    def __init__(self, Menu: Any, MenuItem: Any) -> None:
        self.ran: list[tuple[str, str, bool]] = []
        self.done = threading.Event()
        self.popup = Popup(
            Menu(
                MenuItem("First", self._action("First")),
                MenuItem("Second", self._action("Second")),
            )
        )

    def _action(self, name: str) -> Callable[[Any, Any], None]:
        def run(icon: Any, item: Any) -> None:
            self.ran.append((f"{name} for {icon}", threading.current_thread().name, self.gone()))
            self.done.set()

        return run

    def gone(self) -> bool:
        return not self.popup.is_open


def popup_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sysboy-popup"]


def test_popup_runs_the_chosen_item_once_the_menu_is_closed(
    display: str, pystray_menu: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", display)
    xdotool(display, "mousemove", "200", "150")
    menu = Recorder(*pystray_menu)
    menu.popup.open("the icon")
    menu.popup.open("the icon")  # a second click while it is up opens no second popup
    x, y = wait_for(lambda: popup_ready(display), 20, "no popup")[0][:2]
    assert len(popup_threads()) == 1
    assert (x, y) == (200, 150)  # at the pointer
    xdotool(display, "key", "--delay", "50", "Down", "Down", "Return")
    assert menu.done.wait(scaled(10)), "the chosen item never ran"
    # it ran on the popup's thread, after the popup was done with Tk
    assert menu.ran == [("Second for the icon", "sysboy-popup", True)]
    wait_for(lambda: not popup_threads(), 10, "the popup's thread stayed")
    assert not shown_menus(display)
    # and the next click opens it again
    menu.popup.open("the icon")
    wait_for(lambda: popup_ready(display), 20, "no second popup")
    xdotool(display, "key", "Escape")  # dismissed: nothing runs
    wait_for(lambda: not popup_threads(), 10, "the dismissed popup's thread stayed")
    assert not shown_menus(display)
    assert len(menu.ran) == 1


def test_closing_the_tray_takes_down_an_open_popup(
    display: str, pystray_menu: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", display)
    menu = Recorder(*pystray_menu)
    menu.popup.open("the icon")
    wait_for(lambda: popup_ready(display), 20, "no popup")
    menu.popup.close()
    assert not popup_threads()
    assert not shown_menus(display)
    assert not grabbed(display)
    menu.popup.open("the icon")  # a closing tray opens no more popups
    assert not popup_threads()
    assert menu.ran == []


@pytest.mark.parametrize("missing", ["display", "tkinter"])
def test_without_tk_a_click_is_logged_once_and_the_tray_lives_on(
    missing: str,
    pystray_menu: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if missing == "display":
        monkeypatch.setenv("DISPLAY", ":9999")  # no X server there
    else:
        monkeypatch.setitem(sys.modules, "tkinter", None)  # a build without Tk
    caplog.set_level(logging.DEBUG, logger="sysboy_tray.tray.popup")
    menu = Recorder(*pystray_menu)
    for _ in range(3):
        menu.popup.open("the icon")
        wait_for(lambda: not menu.popup.is_open, 20, "the popup's thread stayed")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "needs Tk" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert menu.ran == []


# -- the whole tray app ----------------------------------------------------------

MIN_ICON_PX = 16
ICON_CLASS = ("sysboySystemTrayIcon", "sysboy")


def window_under_pointer(display: str) -> tuple[str, str] | None:
    """The class of the innermost window under the pointer."""
    import Xlib.display

    conn = Xlib.display.Display(display)
    try:
        window = conn.screen().root
        while (child := window.query_pointer().child) != 0:
            window = child
        return window.get_wm_class()  # type: ignore[no-any-return]
    finally:
        conn.close()


def point_at_icon(display: str) -> tuple[int, int] | None:
    """Put the pointer on the docked icon; where it is, once the pointer is on it.

    The tray host takes the icon in at 1 x 1 px and may move it as it lays itself
    out, so the pointer goes where the icon is now, and that is checked.
    """
    place = docked_icon(display)
    if place is None or min(place[2:]) < MIN_ICON_PX:
        return None
    x, y, width, height = place
    centre = (x + width // 2, y + height // 2)
    xdotool(display, "mousemove", *map(str, centre))
    return centre if window_under_pointer(display) == ICON_CLASS else None


def keys_to(metric: str, status: dict[str, Any]) -> list[str]:
    """Keys that open the popup's Metric submenu and land on `metric`.

    Tk's menu keys skip disabled entries; the menu disables a metric that was read
    and is unavailable, so count the enabled ones before it.
    """
    usable = [m["id"] for m in status["metrics"] if m["available"] or m["reason"] == "not read yet"]
    # Down lights "Metric" (the first entry), Right opens it on its first usable item
    return ["Down", "Right", *["Down"] * usable.index(metric)]


def test_tray_app_menu_on_plain_x11_switches_metric_and_quits(display: str, tmp_path: Path) -> None:
    with tray_app(display) as tray:
        app, env = tray.proc, tray.env
        with Meter(tray.state["port"]) as meter:
            meter.wait_for("cpu")
            status = json.loads(
                subprocess.run(
                    [sys.executable, "-m", "sysboy_tray", "status", "--json"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=scaled(30),
                ).stdout
            )

            # a left click opens the menu at the pointer, by the tray
            x, y = wait_for(lambda: point_at_icon(display), 20, "cannot point at the icon")
            xdotool(display, "click", "1")
            menus = wait_for(lambda: popup_ready(display), 20, "no menu on a left click")
            px, py, pwidth, pheight = menus[0]
            assert py == y  # its top at the pointer
            assert px <= x <= px + pwidth  # shifted left to stay on screen
            shot = ImageGrab.grab(xdisplay=display)
            shot.save(tmp_path / "menu.png")
            grey = shot.crop((px, py, px + pwidth, py + pheight)).convert("L")
            light = grey.point(lambda level: 255 if level > 150 else 0).histogram()[255]
            assert light > pwidth * pheight // 2  # a drawn menu, not a black hole

            xdotool(display, "key", "--delay", "100", *keys_to("ram", status))
            wait_for(lambda: len(shown_menus(display)) == 2, 20, "Metric did not open")
            ImageGrab.grab(xdisplay=display).save(tmp_path / "metric.png")
            xdotool(display, "key", "Return")
            meter.wait_for("ram", timeout=10)
            wait_for(lambda: not shown_menus(display), 10, "the menu stayed up")

            # a right click opens it too; Up twice wraps round to the last entry, Quit
            wait_for(lambda: point_at_icon(display), 20, "cannot point at the icon")
            xdotool(display, "click", "3")
            wait_for(lambda: popup_ready(display), 20, "no menu on a right click")
            xdotool(display, "key", "--delay", "100", "Up", "Up", "Return")
            meter.wait_until(
                lambda messages: {"type": "park", "reason": "quit"} in messages, timeout=10
            )
        assert app.wait(scaled(20)) == 0
    assert "Traceback" not in tray.stderr
    assert "Tcl" not in tray.stderr  # no Tk object outlived its thread
    assert not Paths.default().state_file.exists()
    log = (Path(os.environ["SYSBOY_LOG_DIR"]) / "sysboy.log").read_text()
    assert "tray backend: xorg" in log
    assert "the tray menu" not in log  # no popup failed
