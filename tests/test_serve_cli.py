"""`sysboy serve` as a user runs it: a real process, real metrics, a real client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import handshake
from tests.conftest import scaled


def start_serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sysboy_tray", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_listening_line(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.fullmatch(r"listening on ws://[\d.]+:(\d+)/device\n", line)
    assert match, f"unexpected first line: {line!r}"
    return int(match.group(1))


def test_serve_logs_vram_unavailable_and_serves_cpu_samples(user_dirs: Path) -> None:
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "cpu"}))
    proc = start_serve("--interval", "0.2")
    try:
        port = read_listening_line(proc)
        assert proc.stdout is not None
        advertised = proc.stdout.readline()
        assert advertised.startswith("advertising ") and "(mDNS)" in advertised

        async def client() -> list[dict[str, object]]:
            async with connect(f"ws://127.0.0.1:{port}/device") as ws:
                await handshake.alink(ws, "cli-test", handshake.pair("cli-test"))
                messages = [json.loads(await asyncio.wait_for(ws.recv(), scaled(5)))]
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), scaled(5))))
                proc.send_signal(signal.SIGTERM)
                try:
                    while True:
                        messages.append(json.loads(await asyncio.wait_for(ws.recv(), scaled(5))))
                except ConnectionClosed:
                    assert ws.close_code == 1001
                return messages

        messages = asyncio.run(client())
        assert messages[0]["type"] == "welcome" and messages[0]["needles"] == ["cpu"]
        assert messages[1]["type"] == "cpu"
        value = messages[1]["value"]
        assert isinstance(value, float) and 0.0 <= value <= 100.0
        assert {"type": "park", "reason": "quit"} in messages
        assert proc.wait(scaled(10)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        _out, err = proc.communicate()
    assert re.search(r"metric vram is unavailable: .+", err), err
    assert "Traceback" not in err


def test_version_and_bad_interval() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sysboy_tray", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and re.fullmatch(r"sysboy \d+\.\d+\.\d+\n", out.stdout)
    bad = subprocess.run(
        [sys.executable, "-m", "sysboy_tray", "serve", "--interval", "0"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "between 0.1 and 60" in bad.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_cleanly(sig: signal.Signals) -> None:
    proc = start_serve("--no-mdns")
    try:
        read_listening_line(proc)
        proc.send_signal(sig)
        assert proc.wait(scaled(10)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        _out, err = proc.communicate()
    assert "Traceback" not in err
