"""The app's event loop: the one place that chooses its kind."""

from __future__ import annotations

import asyncio
import sys

# CPython builds select() on Windows for at most 512 sockets (FD_SETSIZE); beyond that the
# selector loop fails with ValueError. Kept free below it: the listening socket, zeroconf's,
# the control API's and a batch of accepts still in flight.
WINDOWS_SELECT_LIMIT = 512
WINDOWS_RESERVE = 96


def new_event_loop(platform: str | None = None) -> asyncio.AbstractEventLoop:
    """A selector loop on Windows, the platform's default elsewhere.

    Windows' default (Proactor) loop stops reading a UDP socket for good after one
    ConnectionResetError, which a device's late mDNS reply to a closed port causes
    (CPython issue 127057): zeroconf would go deaf until the app restarts.
    """
    if (platform or sys.platform) == "win32":
        return asyncio.SelectorEventLoop()
    return asyncio.new_event_loop()


def connection_limit(platform: str | None = None) -> int | None:
    """How many connections the app's loop can watch at once; None: no limit of its own."""
    if (platform or sys.platform) == "win32":
        return WINDOWS_SELECT_LIMIT - WINDOWS_RESERVE
    return None
