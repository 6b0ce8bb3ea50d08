"""Every command as the windowed exe runs it (no streams) and redirected in a cp1252 console.

A windowed Windows executable starts with no standard output or error at all; Python
then sets `sys.stdout` and `sys.stderr` to None. Here the child is started with file
descriptors 1 and 2 closed, which makes CPython do exactly that, so the commands meet the
same streams they meet on Windows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import scaled

# runs the command line the way the frozen app does; an exception that escapes goes to a file
RUNNER = """
import os, sys, traceback
assert sys.stdout is None and sys.stderr is None, "the child should start without streams"
from sysboy_tray.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
except BaseException:
    with open(os.environ["SYSBOY_TEST_CRASH"], "w", encoding="utf-8") as out:
        traceback.print_exc(file=out)
    code = 99
raise SystemExit(code)
"""


def _close_output() -> None:
    # what a windowed exe starts with: no standard output, no standard error
    os.close(1)
    os.close(2)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    desktop = ("DISPLAY", "WAYLAND_DISPLAY", "PYSTRAY_BACKEND")
    env = {k: v for k, v in os.environ.items() if k not in desktop}
    env.pop("PYTHONUTF8", None)
    env.pop("PYTHONIOENCODING", None)
    env["SYSBOY_TEST_CRASH"] = str(tmp_path / "crash.txt")
    env.update(extra)
    return env


def start_windowed(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start the command line with no stdout and no stderr, as the windowed exe does."""
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, *args],
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        preexec_fn=_close_output,
    )


def run_windowed(tmp_path: Path, *args: str, timeout: float = 60) -> int:
    """Run one command with no streams; its exit status (99: an exception escaped)."""
    proc = start_windowed(tmp_path, *args)
    try:
        code = proc.wait(scaled(timeout))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    crash = tmp_path / "crash.txt"
    assert not crash.exists(), f"`sysboy {' '.join(args)}` raised:\n{crash.read_text()}"
    return code


def run_cp1252(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """Run one command redirected to files in a cp1252 console; status, stdout, stderr."""
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        done = subprocess.run(
            [sys.executable, "-m", "sysboy_tray", *args],
            env=_env(tmp_path, PYTHONIOENCODING="cp1252"),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            timeout=scaled(60),
            check=False,
        )
    return done.returncode, out.read_bytes().decode("cp1252"), err.read_bytes().decode("cp1252")


def state_port(timeout: float = 30) -> int:
    state = Path(os.environ["SYSBOY_DATA_DIR"]) / "running.json"
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        try:
            return int(json.loads(state.read_text("utf-8"))["port"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    raise AssertionError("serve never wrote its state file")


@pytest.fixture
def windowed_serve(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`sysboy serve` with no streams, sampling the network metric (its text has arrows)."""
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "net", "interval_s": 0.2, "port": 0}))
    proc = start_windowed(tmp_path, "serve", "--no-mdns")
    try:
        state_port()
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(scaled(10))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_commands_without_a_running_app_have_no_streams(tmp_path: Path) -> None:
    assert run_windowed(tmp_path, "--version") == 0
    assert run_windowed(tmp_path, "--help") == 0
    assert run_windowed(tmp_path, "about") == 0
    assert run_windowed(tmp_path, "metrics", "--wait", "0.1") == 0
    assert run_windowed(tmp_path, "status") == 3  # not running: said, not raised
    assert run_windowed(tmp_path, "metric", "cpu") == 3
    assert run_windowed(tmp_path, "push", "build", "5") == 3
    assert run_windowed(tmp_path, "calibrate") == 3
    # no desktop here: the tray says so in its log and ends, with or without a command
    assert run_windowed(tmp_path, "tray") == 1
    assert run_windowed(tmp_path) == 1
    assert run_windowed(tmp_path, "simulate", "--server", "no port") == 2
    assert run_windowed(tmp_path, "mpremote", "version") == 0
    assert run_windowed(tmp_path, "firmware", "build", "--out", str(tmp_path / "fw")) == 0
    assert (tmp_path / "fw" / "manifest.json").is_file()
    assert run_windowed(tmp_path, "no-such-command") == 2


def test_serve_without_streams_stays_up_and_answers(
    tmp_path: Path, windowed_serve: subprocess.Popen[bytes]
) -> None:
    # the commands that talk to it, also without streams
    assert run_windowed(tmp_path, "status") == 0
    assert run_windowed(tmp_path, "status", "--json") == 0
    assert run_windowed(tmp_path, "push", "build", "42", "--label", "Build ↓") == 0
    assert run_windowed(tmp_path, "metric", "cpu") == 0
    assert run_windowed(tmp_path, "calibrate") == 1  # no device linked: said, not raised
    simulator = start_windowed(tmp_path, "simulate", "--headless", "--server", "127.0.0.1:1")
    try:
        time.sleep(scaled(2))
        assert simulator.poll() is None, "the headless simulator ended by itself"
    finally:
        simulator.send_signal(signal.SIGTERM)
        assert simulator.wait(scaled(15)) == 0
    assert not (tmp_path / "crash.txt").exists()
    time.sleep(scaled(1))  # a print or a flush on a dead stream would have ended it by now
    assert windowed_serve.poll() is None, "serve ended without its streams"
    windowed_serve.send_signal(signal.SIGTERM)
    assert windowed_serve.wait(scaled(10)) == 0
    assert not (tmp_path / "crash.txt").exists()


def test_redirected_output_in_a_cp1252_console(
    tmp_path: Path, windowed_serve: subprocess.Popen[bytes]
) -> None:
    code, out, err = run_cp1252(tmp_path, "metrics", "--wait", "0.1")
    assert code == 0, err
    net = next(line for line in out.splitlines() if line.startswith("net "))
    assert "? " in net and "↓" not in net  # what cp1252 lacks is replaced, not fatal
    code, out, err = run_cp1252(tmp_path, "push", "build", "7", "--label", "Build ↑")
    assert code == 0, err
    code, out, err = run_cp1252(tmp_path, "status")
    assert code == 0, err
    assert "Build ?" in out and "net" in out
    code, out, err = run_cp1252(tmp_path, "status", "--json")
    assert code == 0, err
    assert json.loads(out)["port"] == state_port()
    code, out, err = run_cp1252(tmp_path, "about")
    assert code == 0 and "Settings:" in out
    code, out, err = run_cp1252(tmp_path, "metric", "nope")
    assert code == 1 and "nope" in err and "Traceback" not in err
    assert windowed_serve.poll() is None


def test_children_of_the_tray_get_no_inherited_streams(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sysboy_tray.tray import launch

    started: list[dict[str, object]] = []

    class Recorder:
        def __init__(self, command: list[str], **options: object) -> None:
            started.append({"command": command, **options})

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    launch.run_subcommand("calibrate", "dev-a")
    launch.open_folder(tmp_path / "logs")
    assert len(started) == 2
    for options in started:
        for stream in ("stdin", "stdout", "stderr"):
            assert options[stream] == subprocess.DEVNULL, (stream, options["command"])


def test_every_command_redirected_in_a_cp1252_console(tmp_path: Path) -> None:
    expected = {
        ("--version",): 0,
        ("--help",): 0,
        ("about",): 0,
        ("metrics", "--wait", "0.1"): 0,
        ("status",): 3,
        ("metric", "cpu"): 3,
        ("push", "build", "5"): 3,
        ("calibrate",): 3,
        ("tray",): 1,
        (): 1,
        ("simulate", "--server", "no port"): 2,
        ("mpremote", "version"): 0,
        ("firmware", "build", "--out", str(tmp_path / "fw")): 0,
        ("no-such-command",): 2,
    }
    for args, status in expected.items():
        code, out, err = run_cp1252(tmp_path, *args)
        assert (code, "Traceback" in err) == (status, False), (args, out, err)


def test_serve_redirected_in_a_cp1252_console_stays_up(tmp_path: Path) -> None:
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "net", "interval_s": 0.2, "port": 0}))
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sysboy_tray", "serve"],
            env=_env(tmp_path, PYTHONIOENCODING="cp1252"),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        state_port()
        code, status, _ = run_cp1252(tmp_path, "status")
        assert code == 0 and "net " in status
        time.sleep(scaled(1))
        assert proc.poll() is None, err.read_text("cp1252", "replace")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(scaled(10)) == 0
    log = err.read_bytes().decode("cp1252")
    assert "Traceback" not in log
    assert out.read_bytes().decode("cp1252").startswith("listening on ws://")
