"""Counts writes to the simulated device's flash (its folder) with Linux inotify.

The sim HAL's flash is a plain folder, so every write the firmware makes (a config save, an
update's file, a rename, a delete) is a filesystem event there: counting them at the kernel
sees every path the firmware could take, not only the ones we thought of.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys
from pathlib import Path

# <sys/inotify.h>: every event that changes a file or the folder's entries
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_NONBLOCK = 0o4000
CHANGES = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
HEADER = struct.Struct("iIII")  # wd, mask, cookie, len


def available() -> bool:
    """True where inotify can be used (Linux with a C library)."""
    return sys.platform.startswith("linux") and ctypes.util.find_library("c") is not None


class FlashWatch:
    """Every change in `folder` and its subfolders, from start() on, as (name, mask) pairs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.events: list[tuple[str, int]] = []
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = -1
        self._names: dict[int, str] = {}

    def start(self) -> FlashWatch:
        self._fd = self._libc.inotify_init1(IN_NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for folder in [self.folder, *(p for p in self.folder.rglob("*") if p.is_dir())]:
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), CHANGES)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {folder}")
            self._names[wd] = str(folder.relative_to(self.folder))
        return self

    def writes(self) -> list[tuple[str, int]]:
        """Every change seen so far: (path in the folder, inotify mask)."""
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return list(self.events)
            at = 0
            while at < len(data):
                wd, mask, _cookie, size = HEADER.unpack_from(data, at)
                at += HEADER.size
                name = data[at : at + size].rstrip(b"\0").decode(errors="replace")
                at += size
                self.events.append((os.path.join(self._names.get(wd, "?"), name), mask))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FlashWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
