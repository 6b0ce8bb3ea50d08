"""The Windows desktop side, with user32/shcore and pystray's win32 module faked at ctypes.

DPI awareness before any window, the tray icon drawn and loaded at the size Windows
reports, a left click that opens the menu, and the DPI-aware manifest of the packaged
exe (run through PyInstaller's own manifest code).
"""

from __future__ import annotations

import ctypes
import io
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sysboy_tray import cli, desktop
from sysboy_tray.tray import backend, win32

ROOT = Path(__file__).resolve().parent.parent


class Function:
    """One DLL function as ctypes shows it: argtypes/restype settable, calls recorded."""

    def __init__(self, result: Any, calls: list[tuple[str, tuple[Any, ...]]], name: str) -> None:
        self.result, self.calls, self.name = result, calls, name
        self.argtypes: Any = None
        self.restype: Any = None

    def __call__(self, *args: Any) -> Any:
        self.calls.append((self.name, args))
        return self.result


class Dll:
    """A DLL with only the given functions (others are missing, as on older Windows)."""

    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]], **results: Any) -> None:
        for name, result in results.items():
            setattr(self, name, Function(result, calls, name))


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> Any:
    """sys.platform is win32 and ctypes.WinDLL gives the DLLs a test sets up."""
    dlls: dict[str, Dll] = {}
    calls: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(sys, "platform", "win32")

    def windll(name: str, **options: Any) -> Dll:
        if name not in dlls:
            raise OSError(126, f"The specified module could not be found: {name}")
        return dlls[name]

    monkeypatch.setattr(ctypes, "WinDLL", windll, raising=False)
    return types.SimpleNamespace(
        dlls=dlls, calls=calls, dll=lambda name, **r: dlls.setdefault(name, Dll(calls, **r))
    )


def test_per_monitor_v2_first(windows: Any) -> None:
    windows.dll("user32", SetProcessDpiAwarenessContext=1, SetProcessDPIAware=1)
    assert desktop.make_dpi_aware() == "per-monitor v2"
    ((name, (context,)),) = windows.calls
    assert name == "SetProcessDpiAwarenessContext"
    assert context.value == ctypes.c_void_p(desktop.PER_MONITOR_AWARE_V2).value  # a pseudo-handle


def test_windows_8_1_per_monitor(windows: Any) -> None:
    windows.dll("user32", SetProcessDPIAware=1)  # no SetProcessDpiAwarenessContext
    windows.dll("shcore", SetProcessDpiAwareness=0)
    assert desktop.make_dpi_aware() == "per-monitor"
    assert windows.calls == [("SetProcessDpiAwareness", (desktop.PROCESS_PER_MONITOR_DPI_AWARE,))]


def test_already_aware_by_manifest(windows: Any) -> None:
    # ERROR_ACCESS_DENIED: the manifest set it first; nothing else is tried after shcore
    windows.dll("user32", SetProcessDpiAwarenessContext=0, SetProcessDPIAware=0)
    windows.dll("shcore", SetProcessDpiAwareness=-2147024891)
    assert desktop.make_dpi_aware() == ""


def test_every_command_is_dpi_aware_before_its_first_window(
    windows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows.dll("user32", SetProcessDpiAwarenessContext=1)
    opened: list[str] = []

    def run(args: Any) -> int:
        # a command's first window: the process must be DPI-aware by now
        opened.append(windows.calls[-1][0] if windows.calls else "not aware")
        return 0

    about = types.SimpleNamespace(add_arguments=lambda parser: None, run=run)
    monkeypatch.setattr(cli, "_load", lambda module: about)
    assert cli.main(["about"]) == 0
    assert opened == ["SetProcessDpiAwarenessContext"]


def test_elsewhere_nothing_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    assert desktop.make_dpi_aware() == ""


def test_message_box_on_windows(windows: Any) -> None:
    windows.dll("user32", MessageBoxW=1)
    assert desktop.message_box("Sysboy", "Sysboy is already running") is True
    ((name, (owner, text, title, style)),) = windows.calls
    assert (name, owner, text, title) == (
        "MessageBoxW",
        None,
        "Sysboy is already running",
        "Sysboy",
    )
    assert style & desktop.MB_SETFOREGROUND and style & desktop.MB_ICONINFORMATION


# ---------------------------------------------------------------- the tray icon


@pytest.mark.parametrize(("scale", "pixels"), [(100, 16), (150, 24), (200, 32)])
def test_icon_size_is_what_windows_asks(windows: Any, scale: int, pixels: int) -> None:
    windows.dll("user32", GetSystemMetrics=pixels)  # SM_CXSMICON at this scaling
    assert win32.small_icon_size() == pixels
    assert windows.calls == [("GetSystemMetrics", (win32.SM_CXSMICON,))]


class PystrayWin32Icon:
    """pystray's win32 Icon, reduced to what the subclass relies on."""

    __module__ = "pystray._win32"
    HAS_MENU = True
    HAS_NOTIFICATION = True

    def __init__(self, name: str, icon: Image.Image, title: str, menu: Any = None) -> None:
        self.icon, self.title, self.menu = icon, title, menu
        self._icon_handle: Any = None
        self.notified: list[Any] = []

    def _on_notify(self, wparam: int, lparam: int) -> None:
        self.notified.append(lparam)


def test_toolkit_draws_and_loads_the_icon_at_that_size(
    windows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows.dll("user32", GetSystemMetrics=24)
    loaded: list[tuple[Any, ...]] = []

    def load_image(hinst: Any, path: str, kind: int, cx: int, cy: int, flags: int) -> int:
        with Image.open(io.BytesIO(Path(path).read_bytes())) as ico:
            loaded.append((kind, cx, cy, flags, ico.info["sizes"]))
        return 7

    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")  # pystray itself imports, not its win32 icon
    pystray_win32 = types.ModuleType("pystray._util.win32")
    pystray_win32.LoadImage = load_image  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pystray._util.win32", pystray_win32)
    pystray = types.SimpleNamespace(Icon=PystrayWin32Icon, Menu=object, MenuItem=object)
    toolkit = backend._toolkit(pystray)  # type: ignore[arg-type]
    assert toolkit.name == "win32" and toolkit.icon_size == 24 and toolkit.has_notification

    icon = toolkit.Icon("sysboy", Image.new("RGBA", (24, 24)), "Sysboy")
    icon._assert_icon_handle()
    assert icon._icon_handle == 7
    # exactly the asked size, not LR_DEFAULTSIZE's 32 px for the shell to shrink
    assert loaded == [(win32.IMAGE_ICON, 24, 24, win32.LR_LOADFROMFILE, {(24, 24)})]
    # a left click opens the menu, as the right one does
    icon._on_notify(0, win32.WM_LBUTTONUP)
    icon._on_notify(0, win32.WM_RBUTTONUP)
    assert icon.notified == [win32.WM_RBUTTONUP, win32.WM_RBUTTONUP]


def test_tray_icon_draws_at_the_toolkit_size(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from sysboy_tray.autostart import NoAutostart
    from sysboy_tray.tray.icon import TrayIcon
    from sysboy_tray.tray.menu import TrayMenu
    from tests.conftest import SettableSource, running_app

    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    toolkit = dataclasses.replace(backend.load_tray(), icon_size=24)
    with running_app({"cpu": SettableSource("cpu", 30.0)}, {"metric": "cpu"}) as app:
        menu = TrayMenu(
            app,
            toolkit,
            NoAutostart(),
            open_calibration=print,
            open_folder=print,
            show_about=print,
            quit=print,
        )
        icon = TrayIcon(app, toolkit, menu)
        assert icon.icon.icon.size == (24, 24)
        icon.refresh()
        assert icon.redraws == 1 and icon.icon.icon.size == (24, 24)


# ---------------------------------------------------------------- the packaged exe


def test_manifest_is_dpi_aware_through_pyinstaller() -> None:
    winmanifest = pytest.importorskip("PyInstaller.utils.win32.winmanifest")
    source = (ROOT / "assets" / "sysboy.manifest").read_bytes()
    built = winmanifest.create_application_manifest(source).decode("utf-8")
    assert "PerMonitorV2, PerMonitor</dpiAwareness>" in built
    assert "true/pm</dpiAware>" in built
    assert 'level="asInvoker"' in built  # never asks for admin rights at start
    assert "Microsoft.Windows.Common-Controls" in built
    spec = (ROOT / "build.spec").read_text("utf-8")
    assert 'MANIFEST = str(ROOT / "assets" / "sysboy.manifest") if WINDOWS else None' in spec
    assert "manifest=MANIFEST," in spec
