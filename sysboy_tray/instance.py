"""One Sysboy per user: the first launch holds a lock file; a second launch sees it and stops."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from sysboy_tray.config import Paths

ALREADY_RUNNING = "Sysboy is already running"
LOCK_FILE = "instance.lock"

# The OS drops these locks when the holder exits or crashes, so a stale file never blocks.
if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive(path: Path, timeout: float = 5.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` (made if missing) for a `with` block; waits for a
    holder in another process up to `timeout` seconds, then raises TimeoutError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{path} stayed locked for {timeout:g} s")
            time.sleep(0.01)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


class InstanceLock:
    """An exclusive lock on a file in the data folder, held while Sysboy runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock; False when another Sysboy holds it.

        Raises:
            OSError: the lock file cannot be created at all.
        """
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Not inheritable (Python's default): a child such as the calibration window
        # must not keep the lock after the app exits.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the next launch run. The file stays: removing it would race a new launch."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                _unlock(fd)
            os.close(fd)

    def owner(self) -> int | None:
        """The process id written by the holder, when it can be read."""
        try:
            text = self.path.read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() else None

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def running_state(paths: Paths) -> dict[str, Any]:
    """What the running app wrote in running.json (kind, pid, port); {} if nothing."""
    try:
        state = json.loads(paths.state_file.read_bytes())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def already_running(paths: Paths) -> str:
    """What a second start says: how the first was started, its process and its port."""
    lock = InstanceLock(paths.data_dir / LOCK_FILE)
    state = running_state(paths)
    how = {"tray": " in the tray", "serve": " as `sysboy serve`, without a tray icon"}
    details = [f"process {lock.owner() or state.get('pid') or '?'}"]
    if isinstance(state.get("port"), int):
        details.append(f"port {state['port']}")
    return (
        f"{ALREADY_RUNNING}{how.get(str(state.get('kind')), '')} ({', '.join(details)}); "
        "`sysboy status` shows what it does, and this start steps aside."
    )


def instance_lock(paths: Paths | None = None) -> InstanceLock:
    """The lock for this user's Sysboy, in the data folder."""
    return InstanceLock((paths or Paths.default()).data_dir / LOCK_FILE)
