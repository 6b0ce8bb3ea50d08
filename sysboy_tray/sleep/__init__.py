"""Parking the needles when the PC sleeps: one watcher per platform, chosen in one place.

A watcher calls `on_sleep` on its own thread just before the PC suspends, and
`on_wake` once it is back. `on_sleep` may block for a moment: the watcher holds the
suspend until it returns (a logind delay lock on Linux; on Windows the system waits
for the window procedure to answer the power broadcast).

`sleep_watcher_for()` is the only code that chooses: logind on Linux, power
broadcasts on Windows, and a watcher that does nothing elsewhere.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

Callback = Callable[[], None]


class SleepWatcher(Protocol):
    """Tells when the PC is about to sleep and when it woke up."""

    def start(self, on_sleep: Callback, on_wake: Callback) -> None:
        """Start watching on a thread of its own; never raises for a missing service."""

    def stop(self) -> None:
        """Stop watching and release whatever holds the suspend back."""


class NoSleepWatcher:
    """A platform where the app cannot hear of sleep: the needles park only on quit."""

    def start(self, on_sleep: Callback, on_wake: Callback) -> None:
        log.info("this platform does not tell the app when the PC sleeps")

    def stop(self) -> None:
        pass


def sleep_watcher_for(platform: str = sys.platform) -> SleepWatcher:
    """The sleep watcher for this platform: the one place that chooses."""
    if platform == "win32":
        from sysboy_tray.sleep.windows import WindowsWatcher

        return WindowsWatcher()
    if platform.startswith("linux"):
        try:
            from sysboy_tray.sleep.logind import LogindWatcher
        except ImportError as exc:  # installed without its Linux dependency
            log.warning("cannot watch for sleep (%s); the needles park only on quit", exc)
            return NoSleepWatcher()
        return LogindWatcher()
    return NoSleepWatcher()
