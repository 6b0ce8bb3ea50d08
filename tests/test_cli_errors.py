"""`sysboy serve` and `sysboy tray` refuse a bad start in one sentence, never a traceback.

Real processes; the ports are really taken (a socket of ours) or really not allowed (the
right to bind ports below 1024 is dropped with setpriv when the tests run as root).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sysboy_tray.config import Paths
from tests.conftest import scaled
from tests.console import Console, child_env, sysboy_argv


def start(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *sysboy_argv(*args)],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        stdin=subprocess.DEVNULL,
        env=child_env(),
        check=False,
    )


def one_sentence(text: str) -> str:
    assert "Traceback" not in text and "Error:" not in text, text
    return text


@pytest.mark.parametrize("command", ["serve", "tray"])
@pytest.mark.parametrize("port", ["70000", "-1", "abc", "1.5"])
def test_a_port_out_of_range_is_a_sentence(command: str, port: str) -> None:
    done = start(command, "--port", port)
    assert done.returncode == 2
    assert f"argument --port: {port!r}" in done.stderr or f"argument --port: {port} " in done.stderr
    assert "is not a port number: give a whole number from 0 to 65535" in one_sentence(done.stderr)


@pytest.mark.parametrize(
    ("interval", "says"),
    [
        ("abc", "'abc' is not a number of seconds: give one from 0.1 to 60"),
        ("0", "the update interval must be between 0.1 and 60"),
        ("nan", "the update interval must be a number"),
    ],
)
def test_a_bad_interval_is_a_sentence(interval: str, says: str) -> None:
    done = start("serve", "--interval", interval)
    assert done.returncode == 2
    assert says in one_sentence(done.stderr)
    assert "could not convert" not in done.stderr


def test_an_explicit_busy_port_is_an_error_naming_it() -> None:
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        done = start("serve", "--port", str(taken), "--no-mdns")
    assert done.returncode == 1
    assert f"sysboy: cannot listen: port {taken} is taken by another program" in one_sentence(
        done.stderr
    )
    assert "listening on" not in done.stdout
    assert not Paths.default().state_file.exists()


def test_the_port_from_the_settings_moves_when_taken() -> None:
    paths = Paths.default()
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        paths.settings_file.write_text(json.dumps({"port": taken, "metric": "cpu"}))
        server = Console(sysboy_argv("serve", "--no-mdns"), env=child_env(), merge_stderr=False)
        try:
            server.wait_line("listening on ", timeout=30)
            state = json.loads(paths.state_file.read_text())
            assert state["port"] not in (0, taken)
        finally:
            server.stop()


def _without_low_port_right() -> tuple[str, ...] | None:
    """A command prefix that runs a program without the right to bind port 80, if any."""
    try:
        unprivileged = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        unprivileged = 1024
    if unprivileged <= 80 or sys.platform == "win32":
        return None  # everyone may bind port 80 here (Windows asks no right for it)
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    drop = "-net_bind_service"
    return (setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}", "--")


def test_port_80_without_the_right_is_not_allowed() -> None:
    prefix = _without_low_port_right()
    if prefix is None:
        pytest.skip("this system lets anyone bind port 80 (or setpriv is missing)")
    done = start("serve", "--port", "80", "--no-mdns", prefix=prefix)
    assert done.returncode == 1, done.stdout
    said = one_sentence(done.stderr)
    assert "sysboy: cannot listen: port 80 is not allowed" in said
    assert "need administrator rights" in said and "taken" not in said


@pytest.mark.parametrize("command", ["serve", "tray"])
def test_a_data_folder_that_cannot_be_written_is_a_sentence(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("SYSBOY_DATA_DIR", str(blocker / "sysboy"))  # under a file: no folder
    done = start(command, "--port", "0")
    assert done.returncode == 1
    said = one_sentence(done.stderr)
    assert said.startswith(f"sysboy: cannot start: cannot write {blocker / 'sysboy'}")
