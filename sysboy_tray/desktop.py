"""How the program meets the desktop: sharp windows on scaled displays, and message boxes.

`make_dpi_aware()` runs first thing in `cli.main`, before any window or tray icon
exists: Windows fixes a process's DPI mode at its first window, and a process that is
not DPI-aware gets its windows bitmap-stretched (blurry at 150 %). `message_box()` is
how a program with no console says something a user must see.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

# DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2, a pseudo-handle
PER_MONITOR_AWARE_V2 = -4
PROCESS_PER_MONITOR_DPI_AWARE = 2
MB_OK = 0x0
MB_ICONINFORMATION = 0x40
MB_ICONWARNING = 0x30
MB_SETFOREGROUND = 0x10000


def make_dpi_aware() -> str:
    """Make this process DPI-aware on Windows; which way worked ("" elsewhere or none)."""
    if sys.platform != "win32":  # also tells the type checker which API follows
        return ""
    import ctypes

    # newest first: per-monitor v2 (Windows 10 1703), per-monitor (8.1), system (Vista)
    try:
        user32 = ctypes.WinDLL("user32", use_last_error=True)
        set_context = getattr(user32, "SetProcessDpiAwarenessContext", None)
        if set_context is not None:
            set_context.argtypes = [ctypes.c_void_p]
            set_context.restype = ctypes.c_int
            if set_context(ctypes.c_void_p(PER_MONITOR_AWARE_V2)):
                return "per-monitor v2"
        shcore = ctypes.WinDLL("shcore", use_last_error=True)
        set_awareness = getattr(shcore, "SetProcessDpiAwareness", None)
        if set_awareness is not None:
            set_awareness.argtypes = [ctypes.c_int]
            set_awareness.restype = ctypes.c_long
            if set_awareness(PROCESS_PER_MONITOR_DPI_AWARE) == 0:
                return "per-monitor"
        if user32.SetProcessDPIAware():
            return "system"
    except (OSError, AttributeError) as exc:
        log.debug("cannot make the process DPI-aware: %s", exc)
    # the manifest may have done it already (the packaged app): that is fine too
    return ""


def message_box(title: str, text: str, warning: bool = False) -> bool:
    """Show `text` in a message box and wait for OK; False when none can be shown here."""
    if sys.platform == "win32":
        return _windows_box(title, text, warning)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        import tkinter as tk
        from tkinter import messagebox

        root = tk.Tk()
    except (ImportError, RuntimeError) as exc:
        log.debug("no message box: %s", exc)
        return False
    except Exception as exc:  # tk.TclError: no display after all
        log.debug("no message box: %s", exc)
        return False
    try:
        root.withdraw()
        show = messagebox.showwarning if warning else messagebox.showinfo
        show(title, text, parent=root)
    finally:
        root.destroy()
    return True


def _windows_box(title: str, text: str, warning: bool) -> bool:
    if sys.platform != "win32":
        return False
    import ctypes

    try:
        user32 = ctypes.WinDLL("user32", use_last_error=True)
        box = user32.MessageBoxW
    except (OSError, AttributeError) as exc:
        log.debug("no message box: %s", exc)
        return False
    box.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_wchar_p, ctypes.c_uint]
    box.restype = ctypes.c_int
    icon = MB_ICONWARNING if warning else MB_ICONINFORMATION
    return bool(box(None, text, title, MB_OK | icon | MB_SETFOREGROUND))
