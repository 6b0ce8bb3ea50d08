"""The PC's per-needle settings: old files load as needle 1, each needle keeps its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sysboy_tray.config import DeviceSettings, NeedleSettings, SettingsStore
from sysboy_tray.errors import ConfigError

CURVED = ((0.0, 0.0), (50.0, 0.7), (100.0, 0.95))


def store_with(tmp_path: Path, devices: dict[str, object]) -> SettingsStore:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 1, "install_id": "ab12", "devices": devices}))
    return SettingsStore(path)


def test_an_old_per_device_metric_and_calibration_are_needle_1(tmp_path: Path) -> None:
    old = {"metric": "cpu", "name": "desk", "calibration": [list(p) for p in CURVED]}
    store = store_with(tmp_path, {"dev-a": old})
    device = store.settings.devices["dev-a"]
    assert device == DeviceSettings("desk", (NeedleSettings("cpu", CURVED),))
    assert device.metric == "cpu" and device.calibration == CURVED
    assert device.needle(2) == NeedleSettings()  # never set: follows the global metric


def test_each_needle_keeps_its_own_metric_and_calibration_across_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    store.update_device("dev-a", metric="vram")
    store.update_device("dev-a", 2, metric="cpu", calibration=CURVED)
    assert store.flush()
    again = SettingsStore(path).settings.devices["dev-a"]
    assert again.needle(1) == NeedleSettings("vram")
    assert again.needle(2) == NeedleSettings("cpu", CURVED)
    saved = json.loads(path.read_text())["devices"]["dev-a"]
    assert [n["metric"] for n in saved["needles"]] == ["vram", "cpu"]


def test_an_unchanged_value_is_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    store = SettingsStore(path)
    store.update_device("dev-a", 2, metric="cpu")
    assert store.flush()
    before = path.stat().st_mtime_ns, path.stat().st_ino
    store.update_device("dev-a", 2, metric="cpu")
    assert store.flush()
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


@pytest.mark.parametrize("number", [0, 5])
def test_there_are_needles_1_to_4(tmp_path: Path, number: int) -> None:
    store = SettingsStore(tmp_path / "settings.json")
    with pytest.raises(ConfigError, match="needles 1 to 4"):
        store.update_device("dev-a", number, metric="cpu")


@pytest.mark.parametrize(
    "entry",
    [
        {"needles": []},
        {"needles": [{"metric": "cpu"}] * 5},
        {"needles": [{"metric": "Not a metric"}]},
        {"needles": [{"calibration": [[0, 0]]}]},
        {"needles": "cpu"},
    ],
)
def test_a_bad_needle_list_is_dropped_alone_and_the_file_kept_aside(
    tmp_path: Path, entry: object
) -> None:
    store = store_with(tmp_path, {"dev-a": entry, "dev-b": {"metric": "cpu"}})
    # the bad needle setting takes its default; the rest of the file stands
    assert store.settings.devices["dev-a"] == DeviceSettings()
    assert store.settings.devices["dev-b"].needle(1).metric == "cpu"
    assert store.settings.install_id == "ab12"
    assert (tmp_path / "settings.json.bad").exists()
