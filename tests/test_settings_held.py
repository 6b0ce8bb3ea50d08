"""Settings saved while another program holds the file (Windows: an antivirus scan).

Windows refuses to replace a file that is open elsewhere with a sharing violation,
which Python raises as PermissionError; os.replace is faked to do just that.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray import config
from sysboy_tray.app import App
from sysboy_tray.config import Paths, SettingsStore
from tests.conftest import SettableSource, scaled


class HeldFile:
    """os.replace refused `times` times, as while a scanner holds the target open."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.refused = 0
        self._real = os.replace

    def __call__(self, source: Any, target: Any) -> None:
        if self.refused < self.times:
            self.refused += 1
            raise PermissionError(
                13, "The process cannot access the file because it is being used by another process"
            )
        self._real(source, target)


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(config.time, "sleep", waits.append)
    return waits


def test_a_briefly_held_file_is_saved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_waiting: list[float]
) -> None:
    held = HeldFile(times=3)
    monkeypatch.setattr(config.os, "replace", held)
    config.atomic_write(tmp_path / "settings.json", b'{"port": 1}')
    assert (tmp_path / "settings.json").read_bytes() == b'{"port": 1}'
    assert held.refused == 3 and no_waiting == list(config.REPLACE_WAITS_S[:3])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "settings.json",
        "user",
    ]  # no temp file left


def test_a_file_held_for_good_gives_up_and_leaves_the_old_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_waiting: list[float]
) -> None:
    target = tmp_path / "settings.json"
    target.write_bytes(b"old")
    monkeypatch.setattr(config.os, "replace", HeldFile(times=100))
    with pytest.raises(PermissionError):
        config.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert len(no_waiting) == len(config.REPLACE_WAITS_S)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json", "user"]


def test_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def full(source: Any, target: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(config.os, "replace", full)
    with pytest.raises(OSError, match="No space"):
        config.atomic_write(tmp_path / "x", b"x")


def test_the_user_is_told_when_settings_cannot_be_saved(
    monkeypatch: pytest.MonkeyPatch, no_waiting: list[float]
) -> None:
    paths = Paths.default()
    SettingsStore(paths.settings_file)  # the file exists, as after a first run
    app = App(paths, sources={"cpu": SettableSource("cpu")}, port=0, advertise=False)
    app.start()
    try:
        seen: list[str] = []
        app.add_listener(lambda: seen.extend(app.take_notices()))
        monkeypatch.setattr(config.os, "replace", HeldFile(times=100))
        app.set_interval(2.0)
        deadline = time.monotonic() + scaled(10)
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == [
            "Sysboy cannot save its settings (The process cannot access the file because it is "
            "being used by another process); the change holds until Sysboy quits"
        ]
        assert app.sampler.interval == 2.0  # the change itself holds
        monkeypatch.undo()
        app.set_interval(5.0)
        assert app.store.flush()
        assert json.loads(paths.settings_file.read_text())["interval_s"] == 5.0
    finally:
        app.stop()
