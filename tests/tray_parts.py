"""The real tray menu and icon on pystray's dummy backend, and finding an item as a user
would click it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray.app import App
from sysboy_tray.autostart import XdgAutostartFile
from sysboy_tray.tray.backend import TrayToolkit, load_tray
from sysboy_tray.tray.icon import TrayIcon
from sysboy_tray.tray.menu import TrayMenu


def dummy_toolkit() -> TrayToolkit:
    """pystray with its dummy backend; the choice does not leak into later tests' children."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSTRAY_BACKEND", "dummy")
        return load_tray()


def dummy_menu(app: App, tmp_path: Path, **actions: Callable[..., object]) -> TrayMenu:
    """The tray menu of `app`; the windows and folders it would open are `actions` (print
    when not given), start at login an XDG file under `tmp_path`."""
    chosen: dict[str, Any] = {
        "open_calibration": print,
        "open_folder": print,
        "show_about": print,
        "quit": print,
    }
    chosen.update(actions)
    return TrayMenu(
        app,
        dummy_toolkit(),
        XdgAutostartFile([sys.executable, "-m", "sysboy_tray"], tmp_path / "xdg"),
        **chosen,
    )


def dummy_tray(app: App, tmp_path: Path) -> tuple[TrayMenu, TrayIcon]:
    """The tray menu and icon of `app`."""
    menu = dummy_menu(app, tmp_path)
    return menu, TrayIcon(app, dummy_toolkit(), menu)


def find(menu: TrayMenu, *path: str) -> Any:
    """The item reached by following menu texts (prefix match), as a user would click."""
    items = menu.menu().items
    item = None
    for step in path:
        matches = [i for i in items if str(i.text).startswith(step)]
        assert matches, f"no menu item {step!r} in {[str(i.text) for i in items]}"
        item = matches[0]
        if item.submenu is not None:
            items = item.submenu.items
    return item
