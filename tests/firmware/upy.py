"""Where the firmware and the MicroPython unix port are, for the firmware test drivers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware_micropython"
RUNNER = FIRMWARE / "tests" / "run.py"


def micropython() -> str | None:
    """The `micropython` binary beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    return shutil.which("micropython")


def suite_modules() -> list[str]:
    """The firmware's own test modules, by name."""
    return sorted(p.stem for p in (FIRMWARE / "tests").glob("test_*.py"))


def run_suite(
    interpreter: list[str], selection: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the firmware's runner for `selection` under `interpreter`, from the repo root."""
    return subprocess.run(
        [*interpreter, str(RUNNER.relative_to(REPO)), *selection],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
