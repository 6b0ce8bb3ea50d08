"""Program for MicroPython: cut the power at every flash write of a firmware update.

    update_power_cut.py lfs2|fat first|second|rollback

On a RAM flash formatted by the runtime's own VfsLfs2 (the ESP32's default file system) or
VfsFat, record every block write and erase of one scenario:
    first     the root's version (a USB deploy) updated into slot a, then its first start
    second    a confirmed version in slot a updated into slot b, then its first start
    rollback  a version on trial that used up its starts: the start that rolls it back
Rebuild the flash as a power cut after each write (and in the middle of each) would leave
it, mount it afresh and start the board as main.py does (pointer.boot): the folder it
chooses must hold one whole version, every file matching its hash. Then the update is
sent again (the device says where to resume) and must end in the new version.
One line per cut: `cut <n> <torn> <version booted> <after resuming>`; `bad ...` on failure.
"""

# ruff: noqa: UP031 (runs on MicroPython, where % is the cheap formatting)
import binascii
import gc
import hashlib
import sys

sys.path.insert(0, (sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else ".") + "/../..")
sys.path.insert(0, sys.path[0] + "/firmware_micropython")

import cut_flash
import ota
import pointer
import slots
import vfs

CHUNK = 2048
ROOT = "/flash"


def version_files(seed, sizes):
    out = {}
    for n in range(len(sizes)):
        name, size = sizes[n]
        out[name] = bytes((seed * 31 + n * 7 + i) % 251 for i in range(size))
    return out


def sha(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


# the versions: a spread of sizes, across chunk and block boundaries, one in a sub-folder
VERSIONS = {
    "0.1.0": version_files(1, [("app.mpy", 3000), ("hal/esp32.mpy", 1500), ("link.mpy", 2500)]),
    "0.2.0": version_files(2, [("app.mpy", 5000), ("hal/esp32.mpy", 2100), ("link.mpy", 4096)]),
    "0.3.0": version_files(3, [("app.mpy", 4500), ("hal/esp32.mpy", 900), ("new.mpy", 2049)]),
}


def manifest(version):
    files = VERSIONS[version]
    return [[name, len(files[name]), sha(files[name])] for name in sorted(files)]


def send(version):
    """The whole update to `version` through a fresh receiver, resuming where the flash
    says; the last status."""
    rx = ota.Receiver(ROOT)
    status = rx.begin(version, manifest(version))
    files = VERSIONS[version]
    while status["state"] == "receiving":
        at = status["offset"]
        data = files[status["file"]][at : at + CHUNK]
        status = rx.chunk(status["file"], at, binascii.b2a_base64(data).decode().strip())
    return status


def write_version(folder, version):
    for name, data in VERSIONS[version].items():
        ota._makedirs((folder + "/" + name).rsplit("/", 1)[0])
        with open(folder + "/" + name, "wb") as f:
            f.write(data)


def mount(kind, flash):
    cut_flash.mount(kind, flash, ROOT)


def start():
    """Start the board as main.py does: the version it runs, checked whole, or `bad ...`."""
    slots.state = slots.running = None
    folder = pointer.boot(ROOT)
    version = slots.running
    if version not in VERSIONS:
        return "bad version %r" % version
    for name, data in VERSIONS[version].items():
        try:
            with open((folder or ROOT) + "/" + name, "rb") as f:
                if f.read() != data:
                    return "bad %s of %s differs" % (name, version)
        except OSError:
            return "bad %s of %s missing" % (name, version)
    return version


def prepare(kind, scenario):
    """The flash before the scenario, and the scenario's steps (run while recording)."""
    flash = cut_flash.formatted(kind, 48 if kind == "lfs2" else 384)
    mount(kind, flash)
    write_version(ROOT, "0.1.0")  # what a USB deploy leaves
    with open(ROOT + "/manifest.json", "w") as f:
        f.write('{"firmware_version": "0.1.0"}')
    if scenario == "first":
        target = "0.2.0"
    else:
        assert send("0.2.0")["state"] == "restarting"
        start()
        if scenario == "second":
            slots.noted(ROOT)  # 0.2.0 linked: confirmed
            target = "0.3.0"
        else:
            start()
            start()  # three starts used, none linked
            target = None
    vfs.umount(ROOT)
    return flash, target


def run_scenario(kind, target):
    if target is not None:
        status = send(target)
        assert status["state"] == "restarting", status
    start()  # the new version's first start (or, on trial, the one that rolls back)


def after_resume(target):
    """Send the update again, from where the device says, then start: the version run."""
    if slots.on_trial():
        slots.noted(ROOT)  # it came up and linked
    if target is not None and slots.running != target:
        status = send(target)
        if status["state"] != "restarting":
            return "bad resume %r" % (status,)
        return start()
    return slots.running


def main(kind, scenario):
    flash, target = prepare(kind, scenario)
    before = bytes(flash.image)
    mount(kind, flash)
    flash.log = []
    slots.state = slots.running = None
    run_scenario(kind, target)
    log = flash.log
    flash.log = None
    vfs.umount(ROOT)
    print("writes %d" % len(log))
    for n, torn, image in cut_flash.cuts(before, log):
        try:
            mount(kind, cut_flash.Flash(image, flash.block_size))
        except OSError as exc:
            print("cut %d %s bad mount %r" % (n, torn, exc))
            continue
        try:
            booted = start()
            resumed = after_resume(target) if not booted.startswith("bad") else "-"
        except Exception as exc:
            booted, resumed = "bad crash", "%s: %s" % (type(exc).__name__, exc)
        vfs.umount(ROOT)
        print("cut %d %s %s %s" % (n, torn, booted, resumed))
        image = None
        gc.collect()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
