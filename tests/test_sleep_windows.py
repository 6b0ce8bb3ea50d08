"""Windows sleep: the real window procedure and message loop, with user32/kernel32 faked.

The fake DLLs behave as Windows does for the calls the watcher makes: RegisterClassW
keeps the window procedure, GetMessageW hands out posted messages, DispatchMessageW
calls the procedure, DestroyWindow sends WM_DESTROY, PostQuitMessage ends the loop.
Power broadcasts carry a real POWERBROADCAST_SETTING in memory, as Windows passes it.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from ctypes import wintypes
from typing import Any

import pytest

from sysboy_tray.app import App
from sysboy_tray.config import Paths
from sysboy_tray.sleep import windows
from sysboy_tray.sleep.windows import (
    PBT_APMRESUMEAUTOMATIC,
    PBT_APMSUSPEND,
    PBT_POWERSETTINGCHANGE,
    POWERBROADCAST_SETTING,
    WM_POWERBROADCAST,
    PowerBroadcast,
    WindowsWatcher,
)
from tests.conftest import SettableSource, scaled
from tests.meter import Meter

WM_QUIT = 0x0012
HWND = 0x2A0B2
# GUID_ACDC_POWER_SOURCE {5D3E9A59-E9D5-4B00-A6BD-FF34FF516548}: another setting, ignored
ACDC_POWER_SOURCE = (0x5D3E9A59, 0xE9D5, 0x4B00, (0xA6, 0xBD, 0xFF, 0x34, 0xFF, 0x51, 0x65, 0x48))


def setting(state: int, which: tuple[Any, ...] = windows.CONSOLE_DISPLAY_STATE) -> Any:
    """A POWERBROADCAST_SETTING as Windows passes it in lParam (kept alive by the caller)."""
    data = (ctypes.c_ubyte * 4)(*state.to_bytes(4, "little"))
    return POWERBROADCAST_SETTING(windows.guid(which), 4, data)


class Function:
    """A DLL function as ctypes shows it: argtypes/restype settable; does what it is given."""

    def __init__(self, behaviour: Callable[..., Any]) -> None:
        self.behaviour = behaviour
        self.argtypes: Any = None
        self.restype: Any = None

    def __call__(self, *args: Any) -> Any:
        return self.behaviour(*args)


class FakeWindows:
    """user32 and kernel32 for one hidden window and its message loop."""

    def __init__(self, modern: bool = True) -> None:
        self.posted: queue.Queue[tuple[int, int, int]] = queue.Queue()
        self.calls: list[tuple[str, Any]] = []
        self.window_class: Any = None
        self.display_guid = b""
        user32: dict[str, Callable[..., Any]] = {
            "DefWindowProcW": lambda hwnd, msg, wparam, lparam: 0,
            "RegisterClassW": self._register_class,
            "UnregisterClassW": lambda name, inst: self._call("UnregisterClassW", name) or 1,
            "CreateWindowExW": lambda *args: HWND,
            "DestroyWindow": self._destroy,
            "PostQuitMessage": lambda code: self.posted.put((WM_QUIT, 0, 0)),
            "PostMessageW": lambda hwnd, msg, wparam, lparam: (
                self.posted.put((msg, wparam, lparam)) or 1
            ),
            "GetMessageW": self._get_message,
            "TranslateMessage": lambda pmsg: 0,
            "DispatchMessageW": self._dispatch,
        }
        if modern:  # Windows 8 and later
            user32["RegisterSuspendResumeNotification"] = self._register_suspend
            user32["RegisterPowerSettingNotification"] = self._register_setting
            for name in (
                "UnregisterSuspendResumeNotification",
                "UnregisterPowerSettingNotification",
            ):
                user32[name] = lambda handle, name=name: self._call(name, handle.value) or 1
        self.user32 = type("user32", (), {k: Function(v) for k, v in user32.items()})()
        self.kernel32 = type(
            "kernel32", (), {"GetModuleHandleW": Function(lambda name: 0x400000)}
        )()

    def _call(self, name: str, detail: Any) -> None:
        self.calls.append((name, detail))

    def _register_class(self, pointer: Any) -> int:
        self.window_class = pointer._obj  # byref(WNDCLASSW)
        return 0xC0DE

    def _register_suspend(self, hwnd: Any, flags: int) -> int:
        self._call("RegisterSuspendResumeNotification", (hwnd.value, flags))
        return 0x51

    def _register_setting(self, hwnd: Any, guid: Any, flags: int) -> int:
        self.display_guid = bytes(guid._obj)
        self._call("RegisterPowerSettingNotification", (hwnd.value, flags))
        return 0x52

    def _destroy(self, hwnd: int) -> int:
        # Windows sends WM_DESTROY to the procedure before DestroyWindow returns
        self.window_class.lpfnWndProc(hwnd, windows.WM_DESTROY, 0, 0)
        return 1

    def _get_message(self, pointer: Any, hwnd: Any, low: int, high: int) -> int:
        message, wparam, lparam = self.posted.get(timeout=scaled(10))
        msg = pointer._obj
        msg.hWnd, msg.message, msg.wParam, msg.lParam = HWND, message, wparam, lparam
        return 0 if message == WM_QUIT else 1

    def _dispatch(self, pointer: Any) -> int:
        msg = pointer._obj
        return int(self.window_class.lpfnWndProc(msg.hWnd, msg.message, msg.wParam, msg.lParam))

    def load(self, name: str, **options: Any) -> Any:
        return {"user32": self.user32, "kernel32": self.kernel32}[name]


@pytest.fixture
def fake_windows(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeWindows]:
    def install(modern: bool = True) -> FakeWindows:
        fake = FakeWindows(modern)
        monkeypatch.setattr(sys, "platform", "win32")
        monkeypatch.setattr(ctypes, "WinDLL", fake.load, raising=False)
        # what ctypes has only on Windows: stdcall callbacks (cdecl on x64 anyway), errors
        monkeypatch.setattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE, raising=False)
        monkeypatch.setattr(ctypes, "get_last_error", lambda: 0, raising=False)
        monkeypatch.setattr(ctypes, "WinError", lambda code=0: OSError(code), raising=False)
        return fake

    return install


def post(fake: FakeWindows, wparam: int, lparam: Any = None) -> None:
    address = ctypes.addressof(lparam) if lparam is not None else 0
    fake.posted.put((WM_POWERBROADCAST, wparam, address))


def until(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + scaled(10)
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_display_off_and_modern_standby_reach_the_window(
    fake_windows: Callable[..., FakeWindows],
) -> None:
    fake = fake_windows()
    events: list[str] = []
    watcher = WindowsWatcher()
    watcher.start(lambda: events.append("park"), lambda: events.append("back"))
    off, on, dimmed = setting(0), setting(1), setting(2)
    try:
        assert fake.calls[:2] == [
            ("RegisterSuspendResumeNotification", (HWND, windows.DEVICE_NOTIFY_WINDOW_HANDLE)),
            ("RegisterPowerSettingNotification", (HWND, windows.DEVICE_NOTIFY_WINDOW_HANDLE)),
        ]
        assert fake.display_guid == bytes(windows.guid(windows.CONSOLE_DISPLAY_STATE))
        post(fake, PBT_POWERSETTINGCHANGE, on)  # sent at registration: the display is on
        post(fake, PBT_POWERSETTINGCHANGE, dimmed)  # dimmed: the user is still there
        post(fake, PBT_POWERSETTINGCHANGE, off)
        until(lambda: events == ["park"], "the needles to park on display off")
        # Modern Standby follows the display going off: already parked, nothing more
        post(fake, PBT_APMSUSPEND)
        post(fake, PBT_APMRESUMEAUTOMATIC)
        post(fake, PBT_POWERSETTINGCHANGE, setting(1, ACDC_POWER_SOURCE))  # not the display
        post(fake, PBT_POWERSETTINGCHANGE, on)
        until(lambda: events == ["park", "back"], "the needles to come back with the display")
        post(fake, PBT_APMSUSPEND)  # a classic sleep with the display on
        post(fake, PBT_APMRESUMEAUTOMATIC)
        until(lambda: events == ["park", "back", "park", "back"], "sleep and wake")
    finally:
        watcher.stop()
    assert ("UnregisterSuspendResumeNotification", 0x51) in fake.calls
    assert ("UnregisterPowerSettingNotification", 0x52) in fake.calls
    assert fake.calls[-1] == ("UnregisterClassW", windows.WINDOW_CLASS)


def test_windows_7_keeps_the_classic_broadcasts(
    fake_windows: Callable[..., FakeWindows], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake = fake_windows(modern=False)
    events: list[str] = []
    watcher = WindowsWatcher()
    watcher.start(lambda: events.append("park"), lambda: events.append("back"))
    try:
        post(fake, PBT_APMSUSPEND)
        post(fake, PBT_APMRESUMEAUTOMATIC)
        until(lambda: events == ["park", "back"], "sleep and wake")
    finally:
        watcher.stop()
    assert "RegisterSuspendResumeNotification is missing" in caplog.text


def test_display_off_parks_a_real_device(
    fake_windows: Callable[..., FakeWindows],
) -> None:
    fake = fake_windows()
    paths = Paths.default()
    app = App(
        paths,
        sources={"cpu": SettableSource("cpu", 33.0)},
        port=0,
        interval=0.1,
        advertise=False,
        sleep=WindowsWatcher(),
    )
    app.store.update(metric="cpu")
    app.start()
    off, on = setting(0), setting(1)
    try:
        with Meter(app.port, "desk") as meter:
            meter.wait_for("cpu")
            post(fake, PBT_POWERSETTINGCHANGE, off)
            park = meter.wait_for("park")[-1]
            assert park["reason"] == "sleep"
            seen = len(meter.messages)
            post(fake, PBT_POWERSETTINGCHANGE, on)
            meter.wait_until(
                lambda messages: any(m["type"] == "cpu" for m in messages[seen:]), timeout=10
            )
    finally:
        app.stop()


def test_display_state_reads_only_the_display_setting() -> None:
    off = setting(0)
    assert windows.display_state(ctypes.addressof(off)) == 0
    other = setting(0, ACDC_POWER_SOURCE)
    assert windows.display_state(ctypes.addressof(other)) is None
    assert windows.display_state(0) is None
    events: list[str] = []
    broadcast = PowerBroadcast(lambda: events.append("park"), lambda: events.append("back"))
    assert broadcast.handle(WM_POWERBROADCAST, PBT_POWERSETTINGCHANGE, ctypes.addressof(off))
    assert broadcast.display_off and events == ["park"]
    assert isinstance(wintypes.MSG(), ctypes.Structure)


@pytest.fixture(autouse=True)
def _no_leftover_thread() -> Iterator[None]:
    before = {t.name for t in threading.enumerate()}
    yield
    until(
        lambda: not ({t.name for t in threading.enumerate()} - before) & {"sysboy-sleep"},
        "the sleep thread to end",
    )
