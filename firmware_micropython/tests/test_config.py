"""The config store: defaults, validation, corrupt files, and saves that survive a power cut."""

import json
import os

import config
from support import raises


class PowerCut(Exception):
    """The board lost power: nothing after this point happened."""


class CutBeforeRename:
    """The filesystem boundary, with the power failing just before the rename."""

    def __getattr__(self, name):
        if name in ("rename", "replace"):
            return self._cut
        return getattr(os, name)

    def _cut(self, src, dst):
        raise PowerCut(src)


def fresh_folder():
    raw = os.urandom(6)
    folder = "/tmp/sysboy-config-" + "".join("%02x" % b for b in raw)
    os.mkdir(folder)
    return folder


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def with_credentials(ssid="Home", password="correct horse"):
    cfg = config.defaults()
    cfg["ssid"] = ssid
    cfg["password"] = password
    return cfg


def test_no_file_gives_the_defaults():
    cfg = config.load(fresh_folder())
    assert cfg == config.defaults()
    assert cfg["version"] == 1
    assert cfg["smoothing_ms"] == 300 and cfg["idle_park_s"] == 10
    # no pin chosen: each part takes its chip's own default (hal)
    assert cfg["dac_pin"] == 25 and cfg["button_pin"] is None and cfg["led_pin"] is None
    assert cfg["ap_password"] == "" and cfg["ap_ip"] == "192.168.4.1"  # open until deployed
    assert cfg["cached"] is None and cfg["calibration"] == [[0.0, 0.0], [100.0, 1.0]]


def test_saved_settings_come_back():
    folder = fresh_folder()
    cfg = with_credentials()
    cfg["cached"] = {"host": "192.168.1.20", "port": 47800, "path": "/device"}
    cfg = config.with_needle(cfg, 1, calibration=[[0.0, 0.0], [50.0, 0.7], [100.0, 1.0]])
    cfg["idle_park_s"] = 2.5
    config.save(cfg, folder)
    assert config.load(folder) == cfg
    assert json.loads(read(folder + "/sysboy.json"))["version"] == 1
    assert not exists(folder + "/sysboy.json.tmp")


def test_a_power_cut_before_the_rename_keeps_the_old_settings():
    folder = fresh_folder()
    config.save(with_credentials("Old"), folder)
    real_os = config.os
    config.os = CutBeforeRename()
    try:
        with raises(PowerCut):
            config.save(with_credentials("New"), folder)
    finally:
        config.os = real_os
    # the new file was written whole, but it is never trusted after a restart
    assert json.loads(read(folder + "/sysboy.json.tmp"))["ssid"] == "New"
    cfg = config.load(folder)
    assert cfg["ssid"] == "Old" and cfg["password"] == "correct horse"
    assert not exists(folder + "/sysboy.json.tmp")


def test_a_power_cut_at_any_byte_of_the_write_keeps_the_old_settings():
    folder = fresh_folder()
    config.save(with_credentials("Old"), folder)
    other = fresh_folder()
    config.save(with_credentials("New"), other)  # just to get the bytes a save writes
    new_text = read(other + "/sysboy.json")
    for cut in range(0, len(new_text) + 1, 7):
        write(folder + "/sysboy.json.tmp", new_text[:cut])
        cfg = config.load(folder)
        assert cfg["ssid"] == "Old", cut
        assert not exists(folder + "/sysboy.json.tmp")


def test_the_first_save_cut_short_leaves_a_fresh_device():
    folder = fresh_folder()
    write(folder + "/sysboy.json.tmp", '{"version": 1, "ssid": "Ho')
    assert config.load(folder) == config.defaults()


def test_a_corrupt_file_is_kept_aside_and_the_defaults_used():
    folder = fresh_folder()
    write(folder + "/sysboy.json", '{"version": 1, "ssid": "Ho')
    write(folder + "/sysboy.json.bad", "an older bad copy")
    assert config.load(folder) == config.defaults()
    assert read(folder + "/sysboy.json.bad") == '{"version": 1, "ssid": "Ho'
    assert not exists(folder + "/sysboy.json")
    config.save(with_credentials(), folder)  # the device carries on and can save again
    assert config.load(folder)["ssid"] == "Home"


def test_json_that_is_not_an_object_counts_as_corrupt():
    folder = fresh_folder()
    write(folder + "/sysboy.json", "[1, 2, 3]")
    assert config.load(folder) == config.defaults()
    assert exists(folder + "/sysboy.json.bad")


def test_one_bad_value_falls_back_alone():
    folder = fresh_folder()
    saved = with_credentials()
    saved["smoothing_ms"] = "fast"
    saved["calibration"] = [[0, 0], [50, 0.9], [40, 1.0]]
    saved["dac_pin"] = True
    saved["ap_ip"] = "192.168.4"
    saved["cached"] = {"host": "pc", "port": 70000, "path": "/device"}
    saved["unknown_key"] = 1
    write(folder + "/sysboy.json", json.dumps(saved))
    cfg = config.load(folder)
    assert cfg["ssid"] == "Home" and cfg["password"] == "correct horse"
    defaults = config.defaults()
    for key in ("smoothing_ms", "calibration", "dac_pin", "ap_ip", "cached"):
        assert cfg[key] == defaults[key], key
    assert "unknown_key" not in cfg


def test_a_saved_calibration_is_checked_as_the_protocol_checks_one():
    import protocol

    rising = [[p * 10, p / 10] for p in range(11)]
    twelve = [[p * 9, p / 11] for p in range(12)]
    cases = (
        [[0, 0], [100, 1]],
        [[0, 0], (50, 0.5), [100, 1.0]],
        rising,
        twelve,
        None,
        [],
        "ab",
        [[0, 0]],
        [[0, 0], "ab"],
        [[0, 0, 0], [100, 1]],
        [[0, 0], [100, True]],
        [[0, 0], [101, 1]],
        [[0, 0], [100, 1.5]],
        [[0, -0.1], [100, 1]],
        [[0, 0], [0, 1]],
        [[0, 0], [50, 0.5], [40, 1]],
        [[0, 0], [50, 0.5], [60, 0.5]],
        [[0, 0], [100, float("nan")]],
        [[0, 0], [10**400, 1]],
        [[0, 0], [100, "1"]],
    )
    for points in cases:
        try:
            protocol.check_points(points)
            expected = []
        except protocol.ProtocolError:
            expected = ["calibration"]
        assert config.problems({"calibration": points}) == expected, points


def test_save_refuses_bad_values_and_writes_nothing():
    folder = fresh_folder()
    cfg = with_credentials()
    cfg["idle_park_s"] = 0
    cfg["ap_password"] = "short"
    with raises(ValueError, match="ap_password, idle_park_s"):
        config.save(cfg, folder)
    assert not exists(folder + "/sysboy.json")
    assert not exists(folder + "/sysboy.json.tmp")


def test_a_long_ssid_is_measured_in_bytes():
    assert config.problems({"ssid": "é" * 16}) == []
    assert config.problems({"ssid": "é" * 17}) == ["ssid"]


def test_erase_forgets_everything():
    folder = fresh_folder()
    config.save(with_credentials(), folder)
    config.erase(folder)
    assert config.load(folder) == config.defaults()


def test_an_old_single_needle_file_loads_unchanged_as_one_needle():
    folder = fresh_folder()
    curve = [[0.0, 0.0], [50.0, 0.62], [100.0, 0.93]]
    # what firmware 0.1 wrote: one needle, in the top-level keys, no `needles`
    old = {
        "version": 1,
        "ssid": "Home",
        "password": "correct horse",
        "calibration": curve,
        "smoothing_ms": 120,
        "dac_pin": 26,
        "idle_park_s": 4,
    }
    write(folder + "/sysboy.json", json.dumps(old))
    cfg = config.load(folder)
    assert cfg["needles"] == [
        {"output": "dac", "pin": 26, "calibration": curve, "smoothing_ms": 120}
    ]
    # the old keys read as they were, so nothing about the device changed
    for key, value in old.items():
        assert cfg[key] == value, key
    assert read(folder + "/sysboy.json") == json.dumps(old)  # loading writes nothing


def test_needles_are_saved_each_with_its_own_settings():
    folder = fresh_folder()
    cfg = with_credentials()
    cfg = config.with_needle(cfg, 1, calibration=[[0.0, 0.0], [100.0, 0.8]], smoothing_ms=50)
    cfg["needles"] = cfg["needles"] + [
        config.needle(26, "dac", [[0.0, 0.1], [100.0, 0.9]], 500),
        config.needle(4, "pwm"),
    ]
    config.save(cfg, folder)
    back = config.load(folder)
    assert back == cfg
    assert [n["pin"] for n in back["needles"]] == [25, 26, 4]
    assert back["needles"][1]["calibration"] == [[0.0, 0.1], [100.0, 0.9]]
    assert back["needles"][2]["output"] == "pwm" and back["needles"][2]["smoothing_ms"] == 300
    # needle 1 is still where an older firmware looks for it
    saved = json.loads(read(folder + "/sysboy.json"))
    assert saved["calibration"] == [[0.0, 0.0], [100.0, 0.8]] and saved["smoothing_ms"] == 50


def test_changing_a_needle_changes_only_that_one():
    cfg = config.defaults()
    cfg["needles"] = cfg["needles"] + [config.needle(26)]
    two = config.with_needle(cfg, 2, smoothing_ms=0)
    assert two["needles"][1]["smoothing_ms"] == 0
    assert two["needles"][0] == cfg["needles"][0] and two["smoothing_ms"] == 300
    assert cfg["needles"][1]["smoothing_ms"] == 300  # the original is left alone
    one = config.with_needle(cfg, 1, calibration=[[0.0, 0.0], [100.0, 0.5]])
    assert one["calibration"] == [[0.0, 0.0], [100.0, 0.5]]
    assert one["needles"][0]["calibration"] == [[0.0, 0.0], [100.0, 0.5]]


def test_bad_needle_lists_fall_back_to_the_old_keys():
    folder = fresh_folder()
    bad_lists = (
        [],
        [config.needle(25)] * 5,  # more than four
        [config.needle(25), config.needle(25)],  # two needles on one pin
        [config.needle(25, "servo")],
        [{"output": "dac", "pin": 25}],  # no calibration, no smoothing
        "25,26",
    )
    for bad in bad_lists:
        assert config.problems({"needles": bad}) == ["needles"], bad
        saved = with_credentials()
        saved["needles"] = bad
        saved["calibration"] = [[0.0, 0.0], [100.0, 0.7]]
        write(folder + "/sysboy.json", json.dumps(saved))
        cfg = config.load(folder)
        assert len(cfg["needles"]) == 1
        assert cfg["needles"][0]["calibration"] == [[0.0, 0.0], [100.0, 0.7]]
    cfg = with_credentials()
    cfg["needles"] = [config.needle(25), config.needle(25)]
    with raises(ValueError, match="needles"):
        config.save(cfg, folder)
