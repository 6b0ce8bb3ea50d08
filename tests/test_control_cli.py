"""`sysboy status`, `metric` and `push` as a user runs them, against a running `sysboy serve`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import scaled
from tests.meter import Meter

# how long a push lasts: far longer than a loaded machine takes to start a `sysboy` command,
# or the value could expire between the push and the status that should show it
PUSH_TTL_S = scaled(10)


def sysboy_command() -> list[str]:
    script = shutil.which("sysboy", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "sysboy_tray"]


def sysboy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*sysboy_command(), *args],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def serve(user_dirs: Path) -> Iterator[int]:
    """A running `sysboy serve` (real metrics, no mDNS); yields its port."""
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "ram", "custom_ttl_s": PUSH_TTL_S}))
    proc = subprocess.Popen(
        [*sysboy_command(), "serve", "--port", "0", "--no-mdns", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        match = re.search(r":(\d+)/device", proc.stdout.readline())
        assert match, "sysboy serve did not say where it listens"
        yield int(match.group(1))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(scaled(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_status_says_where_it_listens_and_lists_metrics(serve: int) -> None:
    done = sysboy("status")
    assert done.returncode == 0, done.stderr
    assert f"listening on port {serve}: ws://" in done.stdout
    assert "Devices: none connected" in done.stdout
    assert re.search(r"^\* ram\s+RAM\s+[\d.]+ %", done.stdout, re.M), done.stdout
    assert re.search(r"^  vram\s+VRAM\s+unavailable: ", done.stdout, re.M)
    as_json = json.loads(sysboy("status", "--json").stdout)
    assert as_json["port"] == serve and as_json["metric"] == "ram"


def test_metric_for_one_device_reaches_only_that_device(serve: int) -> None:
    with Meter(serve, "dev-a") as a, Meter(serve, "dev-b", name="Shelf") as b:
        a.wait_for("ram")
        b.wait_for("ram")
        done = sysboy("metric", "cpu", "--device", "dev-a")
        assert done.returncode == 0, done.stderr
        assert "dev-a now shows cpu" in done.stdout
        a.wait_for("cpu")
        # a global change moves dev-b; dev-a keeps the metric chosen for it
        assert sysboy("metric", "disk").returncode == 0
        b.wait_for("disk")
        assert not b.of_type("cpu")
        status = sysboy("status")
        assert re.search(r"^  dev-a .* shows CPU \(cpu\)$", status.stdout, re.M), status.stdout
        assert re.search(r"^  dev-b\s+Shelf .* shows Disk \(disk\)$", status.stdout, re.M)
        assert not a.of_type("disk")


def test_pushed_value_reaches_a_device_then_expires(serve: int) -> None:
    with Meter(serve, "dev-a") as meter:
        meter.wait_for("ram")
        done = sysboy("push", "build", "42.5", "--unit", "jobs", "--label", "Build queue")
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            "Build queue (build) = 42.5: no needle shows it (`sysboy metric build` puts it on "
            f"every needle); it expires in {PUSH_TTL_S:g} s unless pushed again\n"
        )
        assert sysboy("metric", "BUILD").returncode == 0  # names in any case
        again = sysboy("push", "Build", "42.5")
        assert again.stdout.startswith("Build queue (build) = 42.5: shown on 1 needle: dev-a;")
        sample = meter.wait_for("build")[0]
        assert (sample["value"], sample["raw"]) == (42.5, 42.5)
        assert (sample["unit"], sample["label"]) == ("jobs", "Build queue")
        status = sysboy("status").stdout
        assert re.search(r"^\* build\s+Build queue\s+42.5 %.*pushed by a script", status, re.M)
        # with no new push within custom_ttl_s the needle parks; the label stays. A loaded
        # machine may have let the first push expire before the second: that park is not it
        parked = len(meter.of_type("park"))
        park = meter.wait_for("park", count=parked + 1, timeout=PUSH_TTL_S + 15)[-1]
        assert park == {"type": "park", "reason": "unavailable", "metric": "build"} | {
            "label": "Build queue"
        }
        status = sysboy("status").stdout
        assert re.search(r"^\* build\s+Build queue\s+unavailable: not pushed again", status, re.M)


def test_refusals_are_sentences_with_exit_codes(serve: int) -> None:
    nope = sysboy("metric", "nope")
    assert nope.returncode == 1
    assert nope.stderr.startswith("sysboy: there is no metric 'nope' (known: ")
    builtin = sysboy("push", "cpu", "5")
    assert builtin.returncode == 1 and "cannot be used as a pushed metric name" in builtin.stderr
    not_number = sysboy("push", "build", "lots")
    assert not_number.returncode == 2 and "'lots' is not a number" in not_number.stderr
    with Meter(serve, "dev-a", name="Desk") as meter:
        meter.wait_for("ram")
        ghost = sysboy("metric", "cpu", "--device", "typo")
        assert ghost.returncode == 1
        assert ghost.stderr == "sysboy: there is no device 'typo' (known: dev-a (Desk))\n"
        assert sysboy("metric", "disk", "--device", "dev-a").returncode == 0
    saved = json.loads((Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json").read_text())
    assert "typo" not in saved["devices"]  # nothing written
    remembered = sysboy("metric", "CPU", "--device", "dev-a")  # unlinked now, but remembered
    assert remembered.returncode == 0 and remembered.stdout == "device dev-a now shows cpu\n"
    long_label = sysboy("push", "build", "1", "--label", "x" * 40)
    assert long_label.returncode == 1 and "label at most 32 characters" in long_label.stderr


def test_commands_say_when_sysboy_is_not_running(user_dirs: Path) -> None:
    for args in (("status",), ("metric", "cpu"), ("push", "build", "1")):
        done = sysboy(*args)
        assert done.returncode == 3, done
        assert done.stderr.startswith("sysboy: Sysboy is not running; start it with `sysboy`")
        assert "Traceback" not in done.stderr
