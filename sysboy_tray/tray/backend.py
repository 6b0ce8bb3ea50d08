"""The one place that picks the pystray backend, and turns a failed pick into one sentence."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sysboy_tray.errors import TrayUnavailable

log = logging.getLogger(__name__)

ENV_BACKEND = "PYSTRAY_BACKEND"
SERVE_HINT = "run `sysboy serve` to use Sysboy without a tray icon"


@dataclass(frozen=True)
class TrayToolkit:
    """The pystray backend in use and what it can do (pystray's HAS_* flags)."""

    name: str
    Icon: type[Any]
    Menu: type[Any]
    MenuItem: type[Any]
    has_menu: bool
    has_radio: bool
    has_default_action: bool
    has_notification: bool = False
    # the pixels the icon is drawn at: what the tray shows (Windows), or plenty to scale
    icon_size: int = 64


def _gi_has(gi: ModuleType, namespace: str, version: str) -> bool:
    try:
        gi.require_version(namespace, version)
    except ValueError:
        return False
    return True


def linux_candidates() -> list[str]:
    """AppIndicator, then GTK, when PyGObject and their typelibs are there; xorg always last.

    Only AppIndicator and GTK give a right-click menu; xorg gives a bare icon.
    """
    try:
        gi = importlib.import_module("gi")
    except ImportError:
        return ["xorg"]
    names = []
    if _gi_has(gi, "Gtk", "3.0"):
        if _gi_has(gi, "AyatanaAppIndicator3", "0.1") or _gi_has(gi, "AppIndicator3", "0.1"):
            names.append("appindicator")
        names.append("gtk")
    names.append("xorg")
    return names


def candidates(platform: str = sys.platform) -> list[str]:
    """The backends to try, best first; PYSTRAY_BACKEND set by the user wins."""
    chosen = os.environ.get(ENV_BACKEND)
    if chosen:
        return [chosen]
    if platform == "win32":
        return ["win32"]
    if platform == "darwin":
        return ["darwin"]
    return linux_candidates()


def _import_pystray(name: str) -> ModuleType:
    """Import pystray with one backend; a pystray already imported keeps its backend."""
    loaded = sys.modules.get("pystray")
    if loaded is not None:
        return loaded
    before = os.environ.get(ENV_BACKEND)
    os.environ[ENV_BACKEND] = name
    try:
        return importlib.import_module("pystray")
    finally:
        if before is None:
            del os.environ[ENV_BACKEND]
        else:
            os.environ[ENV_BACKEND] = before


def _toolkit(pystray: ModuleType) -> TrayToolkit:
    icon = pystray.Icon
    name = icon.__module__.rpartition("._")[2]
    icon_class, size = icon, 64
    if name == "win32":
        from sysboy_tray.tray.win32 import sized_icon, small_icon_size

        size = small_icon_size()
        icon_class = sized_icon(icon, size)
    return TrayToolkit(
        name=name,
        Icon=icon_class,
        Menu=pystray.Menu,
        MenuItem=pystray.MenuItem,
        has_menu=bool(getattr(icon, "HAS_MENU", False)),
        has_radio=bool(getattr(icon, "HAS_MENU_RADIO", False)),
        has_default_action=bool(getattr(icon, "HAS_DEFAULT_ACTION", True)),
        has_notification=bool(getattr(icon, "HAS_NOTIFICATION", False)),
        icon_size=size,
    )


def stop_icon(icon: Any) -> None:
    """Stop a running pystray icon, from any thread."""
    icon.stop()
    if getattr(icon, "_waker", None) is not None:
        return  # our X11 icon: its loop thread destroyed the window and flushed (xorg.py)
    # pystray's own xorg backend destroys its window from its own thread, but now and then
    # python-xlib leaves that request unsent and run() never returns; one more flush
    # from this thread sends it.
    display = getattr(icon, "_display", None)
    flush = getattr(display, "flush", None)
    if callable(flush):
        try:
            flush()
        except Exception as exc:  # the X connection may already be closed
            log.debug("flush after stop: %s", exc)


def _explain(platform: str, failures: list[tuple[str, BaseException]]) -> str:
    """One sentence for the user; the log has the detail."""
    no_display = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if platform not in ("win32", "darwin") and no_display:
        return (
            "Sysboy cannot show a tray icon because there is no graphical desktop here "
            f"(DISPLAY is not set); {SERVE_HINT}."
        )
    name, exc = failures[-1]
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"Sysboy cannot show a tray icon here ({name}: {reason}); {SERVE_HINT}."


def load_tray(platform: str = sys.platform) -> TrayToolkit:
    """Import pystray with the best backend this system has.

    Raises:
        TrayUnavailable: no backend works here (no display, no tray libraries, ...).
    """
    failures: list[tuple[str, BaseException]] = []
    for name in candidates(platform):
        try:
            pystray = _import_pystray(name)
        except Exception as exc:  # pystray's X backends raise X errors, not only ImportError
            log.debug("pystray backend %s cannot load", name, exc_info=True)
            failures.append((name, exc))
            continue
        toolkit = _toolkit(pystray)
        log.info("tray backend: %s (menu: %s)", toolkit.name, toolkit.has_menu)
        return toolkit
    message = _explain(platform, failures)
    log.warning("%s", message)
    raise TrayUnavailable(message)
