"""The app's event loop: the one place that chooses its kind."""

from __future__ import annotations

import asyncio
import sys


def new_event_loop(platform: str | None = None) -> asyncio.AbstractEventLoop:
    """A selector loop on Windows, the platform's default elsewhere.

    Windows' default (Proactor) loop stops reading a UDP socket for good after one
    ConnectionResetError, which a device's late mDNS reply to a closed port causes
    (CPython issue 127057): zeroconf would go deaf until the app restarts.
    """
    if (platform or sys.platform) == "win32":
        return asyncio.SelectorEventLoop()
    return asyncio.new_event_loop()
