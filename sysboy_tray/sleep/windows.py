"""Windows: WM_POWERBROADCAST to a hidden window on a thread of its own.

Windows sends PBT_APMSUSPEND to every top-level window just before it suspends and
waits (about 2 s) for the window procedure to return, which is when the needles park.
A message-only window (HWND_MESSAGE) gets no broadcasts, so this is an ordinary
top-level window that is never shown.

On Modern Standby (S0 low power idle) laptops a desktop app is suspended before any
broadcast reaches it, unless it registers with RegisterSuspendResumeNotification;
and the first sign of standby there is the display going off. So the window also
registers for the console display state (GUID_CONSOLE_DISPLAY_STATE): the needles
park when the display goes off and come back when it is on again. Everything that
touches the Windows API is in `_serve` and `register`, so this module imports anywhere.
"""

from __future__ import annotations

import ctypes
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
PBT_POWERSETTINGCHANGE = 0x8013
DEVICE_NOTIFY_WINDOW_HANDLE = 0
# GUID_CONSOLE_DISPLAY_STATE {6FE69556-704A-47A0-8F24-C28D936FDA47}; data 0 off, 1 on, 2 dimmed
CONSOLE_DISPLAY_STATE = (
    0x6FE69556,
    0x704A,
    0x47A0,
    (0x8F, 0x24, 0xC2, 0x8D, 0x93, 0x6F, 0xDA, 0x47),
)
DISPLAY_OFF = 0
WINDOW_CLASS = "SysboySleepWatch"


class GUID(ctypes.Structure):
    _fields_ = [
        ("Data1", ctypes.c_uint32),
        ("Data2", ctypes.c_uint16),
        ("Data3", ctypes.c_uint16),
        ("Data4", ctypes.c_ubyte * 8),
    ]


def guid(parts: tuple[int, int, int, tuple[int, ...]]) -> GUID:
    """A GUID structure from its four parts."""
    return GUID(parts[0], parts[1], parts[2], (ctypes.c_ubyte * 8)(*parts[3]))


class POWERBROADCAST_SETTING(ctypes.Structure):
    _fields_ = [
        ("PowerSetting", GUID),
        ("DataLength", ctypes.c_uint32),
        ("Data", ctypes.c_ubyte * 4),
    ]


def display_state(lparam: int) -> int | None:
    """The display state a PBT_POWERSETTINGCHANGE carries (0 off, 1 on, 2 dimmed), else None."""
    if not lparam:
        return None
    setting = POWERBROADCAST_SETTING.from_address(lparam)
    if bytes(setting.PowerSetting) != bytes(guid(CONSOLE_DISPLAY_STATE)):
        return None
    if setting.DataLength < 1:
        return None
    return int.from_bytes(bytes(setting.Data)[: min(4, setting.DataLength)], "little")


class PowerBroadcast:
    """Turns power broadcasts into one `on_sleep` and one `on_wake` per rest.

    The needles rest while the PC sleeps or its display is off, and come back when
    both are over.
    """

    def __init__(self, on_sleep: Callback, on_wake: Callback) -> None:
        self._on_sleep = on_sleep
        self._on_wake = on_wake
        self.asleep = False
        self.display_off = False
        self._parked = False

    def handle(self, message: int, wparam: int, lparam: int = 0) -> bool:
        """Act on one window message; True if it was a power broadcast."""
        if message != WM_POWERBROADCAST:
            return False
        if wparam == PBT_APMSUSPEND:
            self.asleep = True
        # a wake by the user brings RESUMEAUTOMATIC then RESUMESUSPEND: one wake is enough
        elif wparam in (PBT_APMRESUMEAUTOMATIC, PBT_APMRESUMESUSPEND):
            self.asleep = False
        elif wparam == PBT_POWERSETTINGCHANGE:
            state = display_state(lparam)
            if state is not None:
                self.display_off = state == DISPLAY_OFF  # dimmed still shows the meter's PC
        self._follow()
        return True

    def _follow(self) -> None:
        parked = self.asleep or self.display_off
        if parked and not self._parked:
            self._parked = True
            self._call(self._on_sleep)
        elif not parked and self._parked:
            self._parked = False
            self._call(self._on_wake)

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
            if events.handle(message, wparam, lparam):
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
        registered = register(user32, hwnd)
        log.info("watching power broadcasts: the needles park before the PC sleeps")
        try:
            message = wintypes.MSG()
            while user32.GetMessageW(ctypes.byref(message), None, 0, 0) > 0:
                user32.TranslateMessage(ctypes.byref(message))
                user32.DispatchMessageW(ctypes.byref(message))
        finally:
            self._hwnd = None
            unregister(user32, registered)
            user32.UnregisterClassW(WINDOW_CLASS, instance)


# The display GUID must outlive the registration: Windows keeps a pointer to it.
_DISPLAY_GUID = guid(CONSOLE_DISPLAY_STATE)


def register(user32: Any, hwnd: int) -> list[tuple[str, int]]:
    """Ask for suspend/resume (Modern Standby) and display on/off broadcasts to `hwnd`.

    Returns the (unregister function, handle) pairs; a missing API (before Windows 8)
    or a refusal leaves only the classic broadcasts, and says so in the log.
    """
    made: list[tuple[str, int]] = []
    calls = (
        (
            "RegisterSuspendResumeNotification",
            "UnregisterSuspendResumeNotification",
            (ctypes.c_void_p(hwnd), DEVICE_NOTIFY_WINDOW_HANDLE),
            [ctypes.c_void_p, ctypes.c_uint32],
        ),
        (
            "RegisterPowerSettingNotification",
            "UnregisterPowerSettingNotification",
            (ctypes.c_void_p(hwnd), ctypes.byref(_DISPLAY_GUID), DEVICE_NOTIFY_WINDOW_HANDLE),
            [ctypes.c_void_p, ctypes.POINTER(GUID), ctypes.c_uint32],
        ),
    )
    for name, undo, args, argtypes in calls:
        function = getattr(user32, name, None)
        if function is None:
            log.info("%s is missing (Windows before 8): classic power broadcasts only", name)
            continue
        function.argtypes = argtypes
        function.restype = ctypes.c_void_p
        handle = function(*args)
        if not handle:
            log.warning("%s refused; classic power broadcasts only", name)
            continue
        made.append((undo, int(handle)))
    return made


def unregister(user32: Any, registered: list[tuple[str, int]]) -> None:
    """Undo `register`."""
    for undo, handle in registered:
        function = getattr(user32, undo)
        function.argtypes = [ctypes.c_void_p]
        function.restype = ctypes.c_int
        function(ctypes.c_void_p(handle))
