"""One PC app per user, however it was started: a second start steps aside with a sentence.

Real processes in both orders (serve then tray, tray then serve, serve then serve); the
first one's running.json is never overwritten or deleted by the second.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from sysboy_tray.config import Paths
from tests.conftest import scaled
from tests.console import Console, child_env, sysboy, sysboy_argv
from tests.xvfb import tray_app, xvfb


def second_start(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in {**child_env(), **env}.items() if v is not None}
    return subprocess.run(
        sysboy_argv(*args),
        env=environment,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def first_serve() -> Iterator[Console]:
    """A running `sysboy serve` (the first start)."""
    paths = Paths.default()
    paths.settings_file.write_text(json.dumps({"metric": "cpu"}))
    server = Console(
        sysboy_argv("serve", "--port", "0", "--no-mdns"), env=child_env(), merge_stderr=False
    )
    try:
        server.wait_line("listening on ", timeout=30)
        yield server
    finally:
        server.stop()


def state_file() -> tuple[bytes, int]:
    path = Paths.default().state_file
    return path.read_bytes(), path.stat().st_mtime_ns


def check_status_names(port: int) -> None:
    status = sysboy("status")
    assert status.returncode == 0, status.stderr
    assert f"listening on port {port}:" in status.stdout


@pytest.mark.parametrize("second", [("serve", "--port", "0", "--no-mdns"), ()])
def test_serve_first_then_a_second_start_steps_aside(
    first_serve: Console, second: tuple[str, ...]
) -> None:
    before = state_file()
    state = json.loads(before[0])
    assert state["kind"] == "serve" and state["pid"] == first_serve.proc.pid
    # the tray app (no command) as well as a second serve; no display is needed to say so
    done = second_start(*second, DISPLAY=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "Sysboy is already running as `sysboy serve`, without a tray icon "
        f"(process {first_serve.proc.pid}, port {state['port']}); "
        "`sysboy status` shows what it does, and this start steps aside.\n"
    )
    assert "Traceback" not in done.stderr
    assert state_file() == before  # neither rewritten nor deleted
    assert first_serve.proc.poll() is None
    check_status_names(state["port"])
    assert not re.search(r"listening on", done.stdout + done.stderr)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


def test_tray_first_then_serve_steps_aside(display: str) -> None:
    with tray_app(display) as tray:
        before = state_file()
        assert tray.state["kind"] == "tray" and tray.state["pid"] == tray.proc.pid
        done = second_start("serve", "--port", "0", "--no-mdns")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(
            f"Sysboy is already running in the tray (process {tray.proc.pid}, "
            f"port {tray.state['port']}); "
        )
        again = second_start(DISPLAY=display)  # and a second tray
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("Sysboy is already running: look for its gauge icon")
        assert state_file() == before
        assert tray.proc.poll() is None
        check_status_names(tray.state["port"])
        tray.proc.terminate()
        tray.proc.wait(scaled(15))
    assert not Paths.default().state_file.exists()  # the first one cleans up after itself


def test_a_state_file_of_another_process_is_left_alone() -> None:
    """A first app that stops removes only its own running.json."""
    paths = Paths.default()
    paths.settings_file.write_text(json.dumps({"metric": "cpu"}))
    server = Console(sysboy_argv("serve", "--port", "0", "--no-mdns"), env=child_env())
    server.wait_line("listening on ", timeout=30)
    other = json.dumps({"port": 1, "kind": "serve", "pid": os.getpid()}).encode()
    paths.state_file.write_bytes(other)  # as if another app had written it since
    assert server.stop() == 0
    assert paths.state_file.read_bytes() == other
