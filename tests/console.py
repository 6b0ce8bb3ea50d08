"""A child process whose output lines a test reads as they come and waits on."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.conftest import scaled


class Console:
    """Runs `argv`; `lines` fills with its stdout (and stderr, unless kept apart)."""

    def __init__(
        self, argv: Sequence[str], env: dict[str, str] | None = None, merge_stderr: bool = True
    ) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: list[str] = []
        self.times: list[float] = []  # monotonic time each line arrived
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._read, daemon=True)]
        if not merge_stderr:
            self._threads.append(threading.Thread(target=self._read_errors, daemon=True))
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self.times.append(time.monotonic())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.errors.append(line.rstrip("\n"))

    def output(self, last: int = 60) -> str:
        with self._changed:
            return "\n".join([*self.lines[-last:], "-- stderr --", *self.errors[-last:]])

    def wait_for(self, check: Callable[[list[str]], object], what: str, timeout: float) -> object:
        """Wait until `check(lines)` gives something true (re-checked on each line); return it."""
        deadline = time.monotonic() + scaled(timeout)
        with self._changed:
            while True:
                found = check(self.lines)
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._threads[0].is_alive()):
                    break
                self._changed.wait(min(left, 0.5))
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")

    def wait_line(self, wanted: str, what: str = "", timeout: float = 20, after: int = 0) -> int:
        """Wait for a line starting with `wanted` at index >= `after`; its index."""

        def find(lines: list[str]) -> int | None:
            for i in range(after, len(lines)):
                if lines[i].startswith(wanted):
                    return i + 1  # 0 would read as "not found"
            return None

        found = self.wait_for(find, what or repr(wanted), timeout)
        assert isinstance(found, int)
        return found - 1

    def finish(self, timeout: float = 30) -> int:
        """Wait for the process to end by itself; its exit status."""
        self.proc.wait(scaled(timeout))
        for thread in self._threads:
            thread.join(scaled(5))
        return self.proc.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Signal the process, wait for it (killing it if it will not go); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for thread in self._threads:
            thread.join(scaled(5))
        return self.proc.returncode


def child_env(**extra: str) -> dict[str, str]:
    """This environment (with the test's user folders) plus `extra`, unbuffered."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def sysboy_argv(*args: str) -> list[str]:
    """The installed `sysboy` command beside this Python (else `python -m sysboy_tray`)."""
    script = shutil.which("sysboy", path=str(Path(sys.executable).parent))
    return [*([script] if script else [sys.executable, "-m", "sysboy_tray"]), *args]


def sysboy(*args: str, prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """Run one `sysboy` command to its end (`prefix`: e.g. `ip netns exec NS`)."""
    return subprocess.run(
        [*prefix, *sysboy_argv(*args)],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        stdin=subprocess.DEVNULL,
        check=False,
    )
