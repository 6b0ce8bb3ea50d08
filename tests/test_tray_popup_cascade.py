"""The Tk popup at the screen's right edge: each submenu beside its menu, never over it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sysboy_tray.tray.popup import TK_CASCADE_OVERLAP_PX, Popup
from tests.debian import need
from tests.test_tray_popup import popup_ready, pystray_menu, shown_menus, xdotool
from tests.xvfb import wait_for, xvfb

__all__ = ["pystray_menu"]  # the fixture, used by name

WIDTH, HEIGHT = 640, 480
DEVICE = "Bench meter on the shelf (192.168.178.23, -61 dBm)"


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    need("xdotool", "python3-tk")
    with xvfb(WIDTH, HEIGHT) as name:
        monkeypatch.setenv("DISPLAY", name)
        yield name


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """How many pixels wide two menus overlap side by side."""
    return max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))


def test_submenus_at_the_right_edge_open_leftwards(
    display: str, pystray_menu: tuple[Any, Any]
) -> None:
    Menu, MenuItem = pystray_menu
    chosen = threading.Event()

    def choose(icon: Any, item: Any) -> None:
        chosen.set()

    model = Menu(
        MenuItem("Metric", Menu(MenuItem("CPU", choose))),
        MenuItem(
            "Devices",
            Menu(
                MenuItem(
                    DEVICE,
                    Menu(
                        MenuItem("Needle 1", Menu(MenuItem("Same as the tray", choose))),
                        MenuItem("Rename…", choose),
                    ),
                )
            ),
        ),
        MenuItem("Quit", choose),
    )
    popup = Popup(model)
    # where the tray is: the top right corner, so the popup opens at the screen's edge
    xdotool(display, "mousemove", str(WIDTH - 10), "2")
    popup.open(None)
    try:
        wait_for(lambda: popup_ready(display), 20, "the popup never opened")
        # Devices, then the device, then its Needle 1
        for keys in (["Down", "Down", "Right"], ["Right"], ["Right"]):
            opened = len(shown_menus(display)) + 1
            xdotool(display, "key", "--delay", "100", *keys)
            wait_for(lambda n=opened: len(shown_menus(display)) == n, 20, "a submenu did not open")

        def beside() -> list[tuple[int, int, int, int]]:
            shown = shown_menus(display)
            pairs = itertools.pairwise(shown)
            return shown if all(overlap(a, b) <= TK_CASCADE_OVERLAP_PX for a, b in pairs) else []

        menus = wait_for(beside, 10, f"a submenu covers its menu: {shown_menus(display)}")
        for x, _y, width, _height in menus:
            assert x >= 0 and x + width <= WIDTH  # whole on screen: the name is not cut
        top, devices, device, needle = menus
        assert devices[0] + devices[2] <= top[0]  # to the left of the menu it opens from
        assert device[0] + device[2] <= devices[0]  # and on leftwards, off its grandparent
        # 640 px hold no fourth menu on the left: it opens on the right of its own menu
        assert needle[0] >= device[0] + device[2] - TK_CASCADE_OVERLAP_PX
        xdotool(display, "key", "Return")
        assert chosen.wait(10)
    finally:
        popup.close()
