"""A settings file with one bad field: only that field is dropped, the rest is kept."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sysboy_tray import DEFAULT_PORT
from sysboy_tray.config import BAD_COPIES, Paths, SettingsStore
from sysboy_tray.protocol import LINEAR

CURVE = [[0.0, 0.0], [50.0, 0.7], [100.0, 1.0]]
GOOD = {
    "metric": "ram",
    "interval_s": 2.0,
    "install_id": "abcd1234",
    "devices": {
        "meter1": {"metric": "cpu", "name": "Desk", "calibration": CURVE},
        "meter2": {"calibration": CURVE},
    },
}


def write(path: Path, data: object) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    content = json.dumps(data).encode()
    path.write_bytes(content)
    return content


def test_one_bad_field_keeps_the_metric_and_the_calibrations(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = Paths.default().settings_file
    content = write(path, {**GOOD, "port": "abc"})
    with caplog.at_level(logging.WARNING):
        store = SettingsStore(path)
    settings = store.settings
    assert settings.port == DEFAULT_PORT  # the bad field takes its default
    assert (settings.metric, settings.interval_s, settings.install_id) == ("ram", 2.0, "abcd1234")
    assert store.metric_chosen
    assert settings.devices["meter1"].calibration == tuple(tuple(p) for p in CURVE)
    assert settings.devices["meter1"].name == "Desk"
    assert settings.devices["meter2"].calibration == tuple(tuple(p) for p in CURVE)
    # the log names the field and why
    assert "dropped port must be a whole number from 0 to 65535" in caplog.text
    # the file as it was is kept aside; the file now holds what was kept
    assert path.with_name("settings.json.bad").read_bytes() == content
    saved = json.loads(path.read_text())
    assert saved["metric"] == "ram" and saved["port"] == DEFAULT_PORT
    assert saved["devices"]["meter1"]["needles"][0]["calibration"] == CURVE


def test_a_bad_field_of_one_device_drops_only_that_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = Paths.default().settings_file
    broken = {**GOOD, "devices": {**GOOD["devices"], "meter2": {"metric": "cpu", "calibration": 7}}}
    broken["devices"]["meter3"] = "not an object"
    write(path, broken)
    with caplog.at_level(logging.WARNING):
        settings = SettingsStore(path).settings
    assert settings.metric == "ram"
    assert settings.devices["meter1"].calibration == tuple(tuple(p) for p in CURVE)
    assert settings.devices["meter2"].metric == "cpu"
    assert settings.devices["meter2"].calibration == LINEAR  # the default
    assert "meter3" not in settings.devices
    assert "devices.meter2 needle 1 calibration" in caplog.text
    assert "devices.meter3 must be an object" in caplog.text


def test_a_bad_field_of_one_needle_keeps_the_other_needles() -> None:
    path = Paths.default().settings_file
    needles = [
        {"metric": "cpu", "calibration": CURVE},
        {"metric": "no such!", "calibration": CURVE},
    ]
    write(path, {"metric": "ram", "devices": {"two": {"name": "Twin", "needles": needles}}})
    device = SettingsStore(path).settings.devices["two"]
    assert device.name == "Twin"
    assert device.needle(1).metric == "cpu"
    assert device.needle(2).metric is None  # dropped: it follows the global metric
    assert device.needle(2).calibration == tuple(tuple(p) for p in CURVE)


def test_a_metric_in_capitals_is_that_metric() -> None:
    path = Paths.default().settings_file
    write(path, {"metric": "VRAM", "devices": {"m": {"metric": "Cpu"}}})
    settings = SettingsStore(path).settings
    assert settings.metric == "vram" and settings.devices["m"].metric == "cpu"
    assert not path.with_name("settings.json.bad").exists()


def test_no_file_or_no_metric_is_a_first_run() -> None:
    path = Paths.default().settings_file
    assert not SettingsStore(path).metric_chosen  # no file: written now, with an install id
    write(path, {"interval_s": 2.0})
    assert not SettingsStore(path).metric_chosen
    write(path, {"metric": 5})
    assert not SettingsStore(path).metric_chosen  # a bad metric is no choice either


def test_a_few_numbered_bad_copies_are_kept() -> None:
    path = Paths.default().settings_file
    contents = []
    for n in range(BAD_COPIES + 2):
        contents.append(write(path, {"port": f"bad {n}"}))
        SettingsStore(path)
    newest_first = contents[::-1]
    kept = [path.with_name("settings.json.bad")] + [
        path.with_name(f"settings.json.bad.{n}") for n in range(1, BAD_COPIES)
    ]
    assert [p.read_bytes() for p in kept] == newest_first[:BAD_COPIES]
    assert not path.with_name(f"settings.json.bad.{BAD_COPIES}").exists()
    # a file that is not JSON at all is moved aside the same way
    path.write_bytes(b"{not json")
    SettingsStore(path)
    assert path.with_name("settings.json.bad").read_bytes() == b"{not json"
    assert path.with_name("settings.json.bad.1").read_bytes() == newest_first[0]
