"""Shared test fixtures: isolated user folders, scaled timeouts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# CI machines are slow and noisy: every timeout in the tests goes through this factor.
TIMEOUT_FACTOR = float(os.environ.get("SYSBOY_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """A test timeout, stretched by SYSBOY_TIMEOUT_FACTOR."""
    return seconds * TIMEOUT_FACTOR


@pytest.fixture(autouse=True)
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own config, log and data folders."""
    home = tmp_path / "user"
    for name in ("CONFIG", "LOG", "DATA"):
        folder = home / name.lower()
        folder.mkdir(parents=True)
        monkeypatch.setenv(f"SYSBOY_{name}_DIR", str(folder))
    yield home
