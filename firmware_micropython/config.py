"""The device's settings: one JSON file, `sysboy.json`, in the flash root.

Written to `sysboy.json.tmp`, flushed, then renamed over the real file, so a power cut at
any instant leaves either the old or the new file whole. A leftover .tmp is dropped, unless
it is whole and the real file is gone (FAT's rename deletes the old file first).
A file that is not valid JSON is kept as `sysboy.json.bad` and the defaults are used.

`needles` lists the meter's needles (1 to 4), each {output, pin, calibration, smoothing_ms}.
A file without it (an older, single-needle firmware's) loads as one needle from the top-level
`dac_pin`, `calibration` and `smoothing_ms`. Those keys stay needle 1's copy, in memory and
in the file, so such a firmware still finds its needle if it ever runs again; change a needle
with `with_needle`, which keeps both in step.
"""

import json
import os

from micropython import const

_VERSION = const(1)
_NAME = const("sysboy.json")


def linear():
    """The uncalibrated map: 0 % at rest, 100 % at the board's full-scale output level."""
    import hal

    return [[0.0, 0.0], [100.0, float(hal.FULL_SCALE)]]


_MAX_NEEDLES = const(4)
_OUTPUTS = const(("dac", "pwm"))
# one mirrored key per needle setting: old top-level name -> the needle's own name
_NEEDLE_ONE = const(
    (("dac_pin", "pin"), ("calibration", "calibration"), ("smoothing_ms", "smoothing_ms"))
)


def needle(pin=25, output="dac", calibration=None, smoothing_ms=300):
    """One needle's settings; the calibration defaults to the uncalibrated map."""
    return {
        "output": output,
        "pin": pin,
        "calibration": calibration or linear(),
        "smoothing_ms": smoothing_ms,
    }


def defaults():
    """A fresh copy of the default settings."""
    return {
        "version": _VERSION,
        "needles": [needle()],
        "ssid": "",
        "password": "",
        "server": "",
        "cached": None,
        "calibration": linear(),
        "smoothing_ms": 300,
        "idle_park_s": 10,
        "dac_pin": 25,
        "button_pin": None,  # None: the chip's own pin (hal)
        "led_pin": None,
        "ap_password": "",  # open until a USB deploy sets one (the page says so)
        "ap_ip": "192.168.4.1",
        "wrong_password_count": 0,
        # the pairing (docs/protocol.md, "Trust"), written by a USB deploy or the button:
        # the key shared with one PC, and that PC's install id
        "key": "",
        "pc": "",
        # off: the radio answers at once instead of sleeping until the router's next beacon
        "wifi_power_save": False,
        "name": "",  # the meter's own name, sent in hello (empty: the PC shows its id)
    }


def _text(value, lo, hi):
    return isinstance(value, str) and lo <= len(value.encode("utf-8")) <= hi


_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def _chars(text, allowed):
    # strip() works in C and leaves nothing when every character is allowed: stepping through
    # a str would intern each character it meets, for good
    return not text.strip(allowed)


def _whole(value, lo, hi):
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _number(value, lo, hi):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi


def _ipv4(value):
    if not isinstance(value, str):
        return False
    parts = value.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts)


def _endpoint(value):
    if value is None:
        return True
    return (
        isinstance(value, dict)
        and _text(value.get("host"), 1, 63)
        and _whole(value.get("port"), 1, 65535)
        and _text(value.get("path"), 1, 64)
        and value["path"].startswith("/")
    )


def _needles(value):
    if not isinstance(value, list) or not 1 <= len(value) <= _MAX_NEEDLES:
        return False
    pins = []
    for one in value:
        if not (
            isinstance(one, dict)
            and one.get("output") in _OUTPUTS
            and _whole(one.get("pin"), 0, 48)
            and _points(one.get("calibration"))
            and _whole(one.get("smoothing_ms"), 0, 5000)
        ):
            return False
        pins.append(one["pin"])
    # two needles on one pin would fight over it
    return all(pins.count(pin) == 1 for pin in pins)


def _points(value):
    # protocol.check_points' rule (2 to 11 [percent, fraction] pairs, both rising), kept here
    # so that saving the setup form does not load the link's codec into the setup heap
    if not isinstance(value, (list, tuple)) or not 2 <= len(value) <= 11:
        return False
    last = None
    for point in value:
        if not (
            isinstance(point, (list, tuple))
            and len(point) == 2
            and _number(point[0], 0, 100)
            and _number(point[1], 0, 1)
        ):
            return False
        if last and (point[0] <= last[0] or point[1] <= last[1]):
            return False
        last = point
    return True


# why a value may be refused: a hand-edited file, or one from a later firmware
_CHECKS = {
    "ssid": lambda v: _text(v, 0, 32),
    "password": lambda v: _text(v, 0, 64),
    "server": lambda v: _text(v, 0, 70),
    "cached": _endpoint,
    "needles": _needles,
    "calibration": _points,
    "smoothing_ms": lambda v: _whole(v, 0, 5000),
    "idle_park_s": lambda v: _number(v, 1, 3600),
    "dac_pin": lambda v: _whole(v, 0, 48),
    "button_pin": lambda v: v is None or _whole(v, 0, 48),
    "led_pin": lambda v: v is None or _whole(v, 0, 48),
    "ap_password": lambda v: v == "" or _text(v, 8, 63),
    "ap_ip": _ipv4,
    "wrong_password_count": lambda v: _whole(v, 0, 1000000),
    "name": lambda v: _text(v, 0, 32),
    "key": lambda v: v == "" or (_text(v, 64, 64) and _chars(v, "0123456789abcdef")),
    "pc": lambda v: _text(v, 0, 32) and _chars(v, _ID_CHARS),
    "wifi_power_save": lambda v: v is True or v is False,
}


def problems(cfg):
    """The keys of `cfg` whose values are not acceptable, sorted."""
    return sorted(key for key, check in _CHECKS.items() if key in cfg and not check(cfg[key]))


def file_path(folder, name):
    """The path of file `name` in `folder` (None: the device's own folder)."""
    if folder is None:
        import hal

        folder = hal.device_dir()
    return folder + name if folder.endswith("/") else folder + "/" + name


def remove(name):
    """Remove file `name` if it is there."""
    try:
        os.remove(name)
    except OSError:
        pass  # not there


def load(folder=None):
    """The saved settings, checked; defaults for anything missing or unacceptable."""
    path = file_path(folder, _NAME)
    _settle(path)
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return defaults()  # first start
    try:
        saved = json.loads(text)
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        _keep_bad(path, exc)
        return defaults()
    cfg = defaults()
    refused = problems(saved)
    for key in _CHECKS:
        if key in saved and key not in refused:
            cfg[key] = saved[key]
    if refused:
        print("config: ignored bad values for " + ", ".join(refused))
    if saved.get("version") != _VERSION:
        print("config: file version %r read as version %d" % (saved.get("version"), _VERSION))
    if "needles" not in saved or "needles" in refused:
        # an older firmware's file: its one needle is in the top-level keys
        cfg["needles"] = [needle(cfg["dac_pin"], "dac", cfg["calibration"], cfg["smoothing_ms"])]
    for one in cfg["needles"]:
        one["calibration"] = [[float(p), float(f)] for p, f in one["calibration"]]
    first = cfg["needles"][0]
    for old, new in _NEEDLE_ONE:
        cfg[old] = first[new]
    return cfg


def with_needle(cfg, number, **changes):
    """A copy of `cfg` with needle `number` (1..) changed: pin, calibration, smoothing_ms."""
    cfg = dict(cfg)
    needles = [dict(one) for one in cfg["needles"]]
    needles[number - 1].update(changes)
    cfg["needles"] = needles
    if number == 1:
        for old, new in _NEEDLE_ONE:
            if new in changes:
                cfg[old] = changes[new]
    return cfg


def _first_needle_from_top(out):
    # the top-level keys are needle 1's: whoever set them last meant that needle
    first = dict(out["needles"][0])
    for old, new in _NEEDLE_ONE:
        first[new] = out[old]
    needles = list(out["needles"])
    needles[0] = first
    out["needles"] = needles


def _settle(path):
    """Finish or forget a save that was cut short."""
    tmp = path + ".tmp"
    try:
        os.stat(path)
    except OSError:
        # FAT renames over a file by deleting it first: a cut between leaves only the .tmp,
        # whole, since it was closed before the rename (a cut-off one is not valid JSON)
        if _is_object_file(tmp):
            try:
                os.rename(tmp, path)
                return
            except OSError:
                pass
    remove(tmp)  # otherwise the real file is still the last good one


def _is_object_file(path):
    try:
        with open(path) as f:
            return isinstance(json.loads(f.read()), dict)
    except (OSError, ValueError):
        return False


def _keep_bad(path, exc):
    print("config: %s is corrupt (%s); kept as %s.bad, using defaults" % (_NAME, exc, _NAME))
    remove(path + ".bad")
    try:
        os.rename(path, path + ".bad")
    except OSError:
        pass


def save(cfg, folder=None):
    """Write `cfg` atomically; ValueError names any unacceptable key (then nothing is written)."""
    out = {"version": _VERSION}
    fresh = None  # the defaults, made once if a key is missing (a loaded config has all)
    for key in _CHECKS:
        if key not in cfg and fresh is None:
            fresh = defaults()
        out[key] = cfg[key] if key in cfg else fresh[key]
    refused = problems(out)
    if not refused:
        _first_needle_from_top(out)
        refused = problems(out)
    if refused:
        raise ValueError("bad settings: " + ", ".join(refused))
    path = file_path(folder, _NAME)
    with open(path + ".tmp", "w") as f:
        # written as it is encoded: the whole text never sits in the heap, where on a small
        # one it found no free block in one piece (the setup form's save failed there)
        json.dump(out, f)
        f.flush()
        _sync(f)
    replace(path + ".tmp", path)


def erase(folder=None):
    """Forget every setting (factory reset): the next load gives the defaults."""
    path = file_path(folder, _NAME)
    for name in (path + ".tmp", path):
        remove(name)


def _sync(f):
    fsync = getattr(os, "fsync", None)
    if fsync is not None:
        fsync(f.fileno())  # CPython: the data reaches the disk before the rename does


def replace(src, dst):
    """Rename `src` over `dst`."""
    # CPython on Windows cannot rename over a file; MicroPython has no os.replace
    replace = getattr(os, "replace", None)
    if replace is not None:
        replace(src, dst)
    else:
        os.rename(src, dst)
