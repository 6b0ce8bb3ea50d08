"""Program for MicroPython (and CPython): cut the power in the middle of a config save.

    config_power_cut.py blocks lfs2|fat first|overwrite
        On a RAM flash formatted by the runtime's own VfsLfs2 (the ESP32's default file
        system) or VfsFat, record every block write and erase of one save, tagged with the
        step of the save it belongs to. Rebuild the flash as a power cut after each of them
        (and in the middle of each) would leave it, mount it afresh, load the settings and
        save again. One line per cut: `cut <n> <step> <torn> <outcome>`. MicroPython only.
    config_power_cut.py prepare FOLDER          save the old settings
    config_power_cut.py save FOLDER STEP        save the new settings; at hook STEP print
                                                `at <n> <step>` and wait to be killed (STEP
                                                0: print `done <n> <every step>` instead)
    config_power_cut.py load FOLDER             print `loaded <outcome>`

An outcome is `old`, `new`, `defaults` (the first save), or `other ...` / `crash ...`.
"""

# ruff: noqa: UP031 (also runs on MicroPython, where % is the cheap formatting)
import gc
import io
import os
import sys
import time

sys.path.insert(0, (sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else ".") + "/../..")
sys.path.insert(0, sys.path[0] + "/firmware_micropython")

import config
import cut_flash

_open = open


def old_settings():
    cfg = config.defaults()
    cfg["ssid"] = "Home"
    cfg["password"] = "correct horse battery"
    cfg["cached"] = {"host": "192.168.1.20", "port": 47800, "path": "/device"}
    return cfg


def new_settings():
    cfg = old_settings()
    cfg["ssid"] = "Home 5G"
    cfg["password"] = "a new pass phrase"
    cfg["server"] = "pc.local:47800"
    return config.with_needle(
        cfg, 1, calibration=[[0.0, 0.0], [40.0, 0.45], [100.0, 0.9]], smoothing_ms=150
    )


def outcome(cfg):
    """Which whole settings `cfg` is, in a word."""
    for name, whole in (("old", old_settings()), ("new", new_settings())):
        if cfg == whole:
            return name
    if cfg == config.defaults():
        return "defaults"
    return "other ssid=%r password=%r" % (cfg.get("ssid"), cfg.get("password"))


# -- the save, step by step ---------------------------------------------------------------


# json.dump writes to MicroPython's own streams only, which a class becomes by deriving from
# IOBase; CPython's IOBase would flush (a step) when the object is collected
_FileBase = io.IOBase if sys.implementation.name == "micropython" else object


class StepFile(_FileBase):
    """The temp file as config.save uses it, calling `hook` before and after each step."""

    def __init__(self, f, hook):
        self.f = f
        self.hook = hook

    def write(self, data):
        self.hook("write")
        n = self.f.write(data)
        self.hook("after write")
        return n

    def flush(self):
        self.hook("flush")
        self.f.flush()
        self.hook("after flush")

    def fileno(self):
        return self.f.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.hook("close")
        self.f.close()
        self.hook("after close")


class StepOs:
    """The os module as config.save sees it, calling `hook` before and after each step."""

    def __init__(self, hook):
        self.hook = hook

    def __getattr__(self, name):
        real = getattr(os, name)  # AttributeError when the runtime lacks it, as config expects
        if name not in ("rename", "replace", "fsync"):
            return real

        def call(*args):
            self.hook(name)
            result = real(*args)
            self.hook("after " + name)
            return result

        return call


def stepping(hook):
    """Route config's file and os calls through `hook`; returns the undo."""

    def step_open(path, mode="r"):
        if not mode.startswith("w"):
            return _open(path, mode)
        hook("open")
        f = StepFile(_open(path, mode), hook)
        hook("after open")
        return f

    config.open = step_open
    config.os = StepOs(hook)

    def undo():
        del config.open
        config.os = os

    return undo


# -- killed at a step (any runtime, the real file system) ----------------------------------


def save_until(folder, stop):
    seen = [0]
    names = []

    def hook(step):
        seen[0] += 1
        names.append(step.replace(" ", "_"))
        if seen[0] == stop:
            print("at %d %s" % (seen[0], step.replace(" ", "_")))
            flush = getattr(sys.stdout, "flush", None)
            if flush is not None:
                flush()  # CPython buffers a pipe
            while True:  # the power is cut here: the parent kills this process
                time.sleep(1)

    stepping(hook)
    config.save(new_settings(), folder)
    print("done %d %s" % (seen[0], " ".join(names)))


# -- cut at a block write (MicroPython: its own littlefs and FAT) --------------------------


def _mount(kind, flash):
    cut_flash.mount(kind, flash, "/flash")


def _umount():
    import vfs

    vfs.umount("/flash")


def blocks(kind, scenario):
    flash = cut_flash.formatted(kind, 16 if kind == "lfs2" else 128)
    _mount(kind, flash)
    if scenario == "overwrite":
        config.save(old_settings(), "/flash")
    _umount()
    before = bytes(flash.image)

    # one save, every write recorded with the step it belongs to
    _mount(kind, flash)
    flash.log = []

    def hook(step):
        flash.tag = step  # writes are tagged with the step in progress, or the last one done

    undo = stepping(hook)
    flash.tag = "start"
    config.save(new_settings(), "/flash")
    undo()
    log = flash.log
    flash.log = None
    _umount()
    print("writes %d" % len(log))

    for n, torn, image in cut_flash.cuts(before, log):
        step = log[n][0] if n < len(log) else "after save"
        print("cut %d %s %s %s" % (n, step.replace(" ", "_"), torn, reboot(kind, image)))
        image = None
        gc.collect()


def reboot(kind, image):
    """Mount `image`, load the settings, save again: the outcome of the load, in a word."""
    try:
        _mount(kind, cut_flash.Flash(image, cut_flash.BLOCK_SIZE[kind]))
    except OSError as exc:
        return "crash mount: %r" % exc
    try:
        cfg = config.load("/flash")
        got = outcome(cfg)
        cfg["wrong_password_count"] = 1  # the device carries on and saves again
        config.save(cfg, "/flash")
        if config.load("/flash") != cfg:
            got = "crash the next save did not load back"
    except Exception as exc:
        got = "crash %s: %s" % (type(exc).__name__, exc)
    _umount()
    return got


def main(argv):
    command = argv[1]
    if command == "blocks":
        blocks(argv[2], argv[3])
    elif command == "prepare":
        config.save(old_settings(), argv[2])
    elif command == "save":
        save_until(argv[2], int(argv[3]))
    elif command == "load":
        print("loaded " + outcome(config.load(argv[2])))


if __name__ == "__main__":
    main(sys.argv)
