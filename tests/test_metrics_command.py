"""`sysboy metrics` as a user runs it, on this PC (no GPU)."""

from __future__ import annotations

import subprocess
import sys

import pynvml
import pytest

from sysboy_tray.metrics import DRM_ROOT, METRICS, amd
from tests.conftest import scaled


def has_gpu() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return bool(sys.platform.startswith("linux") and amd.find_cards(DRM_ROOT))
    pynvml.nvmlShutdown()
    return True


@pytest.mark.skipif(has_gpu(), reason="this PC has a GPU")
def test_metrics_command_on_a_pc_without_gpu() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sysboy_tray", "metrics", "--wait", "0.2"],
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert lines["GPUs:"] == "GPUs: none found"
    assert set(METRICS) <= set(lines)
    assert "unavailable: No GPU to read: the NVIDIA driver is not installed" in lines["vram"]
    for metric in ("cpu", "ram", "net", "disk"):
        assert " %" in lines[metric] and "unavailable" not in lines[metric], lines[metric]


def test_metrics_command_refuses_a_bad_wait() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sysboy_tray", "metrics", "--wait", "soon"],
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert done.returncode == 2
    assert "the wait must be a number of seconds" in done.stderr
