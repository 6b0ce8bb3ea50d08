"""Single instance, with real processes: a second launch sees the first and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysboy_tray.instance import ALREADY_RUNNING, InstanceLock, instance_lock
from tests.conftest import scaled

# A launch as the app makes it: take the lock or say that Sysboy already runs.
LAUNCH = textwrap.dedent(
    """
    import sys, subprocess
    from sysboy_tray.instance import ALREADY_RUNNING, instance_lock
    lock = instance_lock()
    if not lock.acquire():
        print(ALREADY_RUNNING, lock.owner(), flush=True)
        sys.exit(0)
    if "--child" in sys.argv:
        # like the calibration window: a child that outlives the app
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE)
        print("child", child.pid, flush=True)
    print("holding", flush=True)
    sys.stdin.read()
    lock.release()
    print("released", flush=True)
    """
)


def launch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def second_launch() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCH],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=scaled(30),
    )


@pytest.fixture
def first() -> Iterator[subprocess.Popen[str]]:
    proc = launch()
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=scaled(10))


def test_second_launch_says_already_running_and_exits_0(first: subprocess.Popen[str]) -> None:
    result = second_launch()
    assert result.returncode == 0
    assert result.stdout.strip() == f"{ALREADY_RUNNING} {first.pid}"
    # and in this process too
    assert not instance_lock().acquire()


def test_lock_passes_on_after_a_clean_exit(first: subprocess.Popen[str]) -> None:
    assert first.stdin is not None and first.stdout is not None
    first.stdin.close()
    assert first.stdout.readline().strip() == "released"
    assert first.wait(timeout=scaled(10)) == 0
    with instance_lock() as lock:
        assert lock.acquire()
        assert lock.owner() == os.getpid()
        assert second_launch().stdout.strip() == f"{ALREADY_RUNNING} {os.getpid()}"
    assert lock.path.exists()  # kept, so no launch can race its removal


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_crashed_holder_leaves_no_stale_lock(first: subprocess.Popen[str]) -> None:
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=scaled(10))
    lock = instance_lock()
    assert lock.acquire()
    lock.release()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_child_of_the_app_does_not_keep_the_lock() -> None:
    proc = launch("--child")
    assert proc.stdout is not None
    child_line = proc.stdout.readline().split()
    assert child_line[0] == "child"
    assert proc.stdout.readline().strip() == "holding"
    child_pid = int(child_line[1])
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=scaled(10))
        os.kill(child_pid, 0)  # the child still runs...
        lock = instance_lock()
        assert lock.acquire()  # ...yet the next launch may start
        lock.release()
    finally:
        os.kill(child_pid, signal.SIGKILL)


def test_acquire_twice_in_one_process_is_harmless(tmp_path: Path) -> None:
    lock = InstanceLock(tmp_path / "deep" / "instance.lock")
    assert lock.acquire() and lock.acquire()
    assert lock.held
    other = InstanceLock(lock.path)
    assert not other.acquire()  # a second open of the file is refused, even here
    lock.release()
    lock.release()
    assert other.acquire()
    other.release()


def test_unreadable_owner_is_none(tmp_path: Path) -> None:
    path = tmp_path / "instance.lock"
    path.write_text("not a pid", "ascii")
    assert InstanceLock(path).owner() is None
    assert InstanceLock(tmp_path / "missing").owner() is None
