"""Windows: WM_POWERBROADCAST to a hidden window on a thread of its own.

Windows sends PBT_APMSUSPEND to every top-level window just before it suspends and
waits (about 2 s) for the window procedure to return, which is when the needles park.
A message-only window (HWND_MESSAGE) gets no broadcasts, so this is an ordinary
top-level window that is never shown. Everything that touches the Windows API is
in `_serve`, so this module imports anywhere.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from sysboy_tray.sleep import Callback

log = logging.getLogger(__name__)

WM_DESTROY = 0x0002
WM_CLOSE = 0x0010
WM_POWERBROADCAST = 0x0218
PBT_APMSUSPEND = 0x0004
PBT_APMRESUMESUSPEND = 0x0007
PBT_APMRESUMEAUTOMATIC = 0x0012
WINDOW_CLASS = "SysboySleepWatch"


class PowerBroadcast:
    """Turns power broadcasts into one `on_sleep` and one `on_wake` per suspend."""

    def __init__(self, on_sleep: Callback, on_wake: Callback) -> None:
        self._on_sleep = on_sleep
        self._on_wake = on_wake
        self.asleep = False

    def handle(self, message: int, wparam: int) -> bool:
        """Act on one window message; True if it was a power broadcast."""
        if message != WM_POWERBROADCAST:
            return False
        if wparam == PBT_APMSUSPEND and not self.asleep:
            self.asleep = True
            self._call(self._on_sleep)
        # a wake by the user brings RESUMEAUTOMATIC then RESUMESUSPEND: one wake is enough
        elif wparam in (PBT_APMRESUMEAUTOMATIC, PBT_APMRESUMESUSPEND) and self.asleep:
            self.asleep = False
            self._call(self._on_wake)
        return True

    @staticmethod
    def _call(callback: Callback) -> None:
        try:
            callback()
        except Exception:  # an exception must not unwind through the window procedure
            log.exception("the sleep callback failed")


class WindowsWatcher:
    """Owns the hidden window and its message loop."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._hwnd: int | None = None
        self._post_close: Any = None

    def start(self, on_sleep: Callback, on_wake: Callback) -> None:
        events = PowerBroadcast(on_sleep, on_wake)
        self._thread = threading.Thread(
            target=self._run, args=(events,), name="sysboy-sleep", daemon=True
        )
        self._thread.start()
        self._ready.wait(2.0)

    def stop(self, timeout: float = 2.0) -> None:
        if self._hwnd is not None and self._post_close is not None:
            self._post_close(self._hwnd)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, events: PowerBroadcast) -> None:
        try:
            self._serve(events)
        except Exception:
            log.exception("cannot watch for sleep; the needles park only on quit")
        finally:
            self._ready.set()

    def _serve(self, events: PowerBroadcast) -> None:
        if sys.platform != "win32":  # also tells the type checker which API follows
            raise OSError("power broadcasts exist only on Windows")
        import ctypes
        from ctypes import wintypes

        user32 = ctypes.WinDLL("user32", use_last_error=True)
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        lresult = wintypes.LPARAM  # LRESULT: pointer-sized and signed, like LPARAM
        wndproc = ctypes.WINFUNCTYPE(
            lresult, wintypes.HWND, wintypes.UINT, wintypes.WPARAM, wintypes.LPARAM
        )

        class WNDCLASSW(ctypes.Structure):
            _fields_ = [
                ("style", wintypes.UINT),
                ("lpfnWndProc", wndproc),
                ("cbClsExtra", ctypes.c_int),
                ("cbWndExtra", ctypes.c_int),
                ("hInstance", wintypes.HINSTANCE),
                ("hIcon", wintypes.HICON),
                ("hCursor", wintypes.HANDLE),
                ("hbrBackground", wintypes.HBRUSH),
                ("lpszMenuName", wintypes.LPCWSTR),
                ("lpszClassName", wintypes.LPCWSTR),
            ]

        kernel32.GetModuleHandleW.argtypes = [wintypes.LPCWSTR]
        kernel32.GetModuleHandleW.restype = wintypes.HMODULE
        user32.DefWindowProcW.argtypes = [
            wintypes.HWND,
            wintypes.UINT,
            wintypes.WPARAM,
            wintypes.LPARAM,
        ]
        user32.DefWindowProcW.restype = lresult
        user32.RegisterClassW.argtypes = [ctypes.POINTER(WNDCLASSW)]
        user32.RegisterClassW.restype = wintypes.ATOM
        user32.UnregisterClassW.argtypes = [wintypes.LPCWSTR, wintypes.HINSTANCE]
        user32.UnregisterClassW.restype = wintypes.BOOL
        user32.CreateWindowExW.argtypes = [
            wintypes.DWORD,
            wintypes.LPCWSTR,
            wintypes.LPCWSTR,
            wintypes.DWORD,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            wintypes.HWND,
            wintypes.HMENU,
            wintypes.HINSTANCE,
            wintypes.LPVOID,
        ]
        user32.CreateWindowExW.restype = wintypes.HWND
        user32.DestroyWindow.argtypes = [wintypes.HWND]
        user32.DestroyWindow.restype = wintypes.BOOL
        user32.PostQuitMessage.argtypes = [ctypes.c_int]
        user32.PostQuitMessage.restype = None
        user32.PostMessageW.argtypes = [
            wintypes.HWND,
            wintypes.UINT,
            wintypes.WPARAM,
            wintypes.LPARAM,
        ]
        user32.PostMessageW.restype = wintypes.BOOL
        msg_p = ctypes.POINTER(wintypes.MSG)
        user32.GetMessageW.argtypes = [msg_p, wintypes.HWND, wintypes.UINT, wintypes.UINT]
        user32.GetMessageW.restype = wintypes.BOOL
        user32.TranslateMessage.argtypes = [msg_p]
        user32.TranslateMessage.restype = wintypes.BOOL
        user32.DispatchMessageW.argtypes = [msg_p]
        user32.DispatchMessageW.restype = lresult

        def window_proc(hwnd: int, message: int, wparam: int, lparam: int) -> int:
            if events.handle(message, wparam):
                return 1  # TRUE: the broadcast was handled
            if message == WM_CLOSE:
                user32.DestroyWindow(hwnd)
                return 0
            if message == WM_DESTROY:
                user32.PostQuitMessage(0)
                return 0
            return int(user32.DefWindowProcW(hwnd, message, wparam, lparam))

        proc = wndproc(window_proc)  # kept referenced for as long as the window lives
        instance = kernel32.GetModuleHandleW(None)
        window_class = WNDCLASSW(lpfnWndProc=proc, hInstance=instance, lpszClassName=WINDOW_CLASS)
        if not user32.RegisterClassW(ctypes.byref(window_class)):
            raise ctypes.WinError(ctypes.get_last_error())
        hwnd = user32.CreateWindowExW(
            0, WINDOW_CLASS, "Sysboy", 0, 0, 0, 0, 0, None, None, instance, None
        )
        if not hwnd:
            raise ctypes.WinError(ctypes.get_last_error())
        self._hwnd = hwnd
        self._post_close = lambda window: user32.PostMessageW(window, WM_CLOSE, 0, 0)
        self._ready.set()
        log.info("watching power broadcasts: the needles park before the PC sleeps")
        try:
            message = wintypes.MSG()
            while user32.GetMessageW(ctypes.byref(message), None, 0, 0) > 0:
                user32.TranslateMessage(ctypes.byref(message))
                user32.DispatchMessageW(ctypes.byref(message))
        finally:
            self._hwnd = None
            user32.UnregisterClassW(WINDOW_CLASS, instance)
