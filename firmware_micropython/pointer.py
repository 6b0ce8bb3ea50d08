"""Which firmware version starts: the slot pointer, the boot counter and the rollback.

A USB deploy writes the firmware into the flash root. An update over Wi-Fi (ota.py) writes
the next version beside it, into `ota/a` or `ota/b`, and switches to it by writing the
pointer. The pointer is kept twice, `ota-1.json` and `ota-2.json`, each with a sequence
number and a checksum; a write replaces the older copy, so a power cut at any instant
leaves the newest whole copy naming the old version or the new one. (A rename is not
enough: FAT renames over a file by deleting it first, and a half-written directory sector
can then lose both names.) No pointer: the root's version starts.

A new version starts on trial. It gets _BOOT_TRIES starts and slots.deadline_s() seconds to link
to its PC; the first proven link confirms it. A fourth start while still on trial, or the
deadline passing, points the pointer back at the previous version, which tells the PC.

This module, slots.py, main.py and boot.py are the part that brings a bad version back:
an update never carries them (the PC leaves them out), so they are always the root's, and
they import no other firmware module (that would pin the root's copy of it). main.py
drops this module once the start is chosen; slots.py keeps what the running firmware
needs, and brings this one back only to write the pointer.
"""

import json
import os

import slots
from micropython import const

_COPIES = const(("ota-1.json", "ota-2.json"))
FOLDER = "ota"
_SLOTS = const(("a", "b"))
_BOOT_TRIES = const(3)
# the watchdog a version on trial starts under: supervisor.py's own timeout, so its feeds keep it
_TRIAL_WATCHDOG_MS = const(20000)
_NO_WATCHDOG_FLAG = const("nowatchdog")  # a USB deploy is copying: no watchdog (hal.watchdog too)


def flash():
    """The flash root: the board's "", or the simulator's folder (as hal.sim.device_dir)."""
    getenv = getattr(os, "getenv", None)  # the unix port and CPython have it, the board not
    if getenv is None:
        return ""
    folder = getenv("SYSBOY_DEVICE_DIR") or "./device-sim"
    while len(folder) > 1 and folder.endswith("/"):
        folder = folder[:-1]
    return folder


def path(folder, *parts):
    """`parts` joined under the flash root (`folder`, or flash() when None)."""
    joined = flash() if folder is None else folder
    for part in parts:
        joined += "/" + part
    return joined


# -- the pointer ------------------------------------------------------------------------


def _copy(folder, name):
    """One copy of the pointer, or None when it is missing, cut short or damaged."""
    try:
        with open(path(folder, name)) as f:
            text = f.read()
    except OSError:
        return None
    body, _, check = text.rpartition("\n")
    if not body or _checksum(body) != check:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("seq"), int):
        return None
    return value


def _checksum(text):
    import binascii
    import hashlib

    return binascii.hexlify(hashlib.sha256(text.encode()).digest()[:8]).decode()


def _newest(folder):
    """(index of the newest whole copy or -1, that copy or None)."""
    best, at = None, -1
    for index in range(len(_COPIES)):
        value = _copy(folder, _COPIES[index])
        if value is not None and (best is None or value["seq"] > best["seq"]):
            best, at = value, index
    return at, best


def read(folder=None):
    """The pointer as saved: {"slot", "version", "previous", "previous_version", "trial",
    "boots", "told"?, "seq"}, or None when the root's version starts."""
    value = _newest(folder)[1]
    if value is None or value.get("slot") not in ("", "a", "b"):
        return None
    return value


def write(folder, value):
    """Save the pointer over the older copy; the newer one stays until this one is whole."""
    at, newest = _newest(folder)
    value = dict(value)
    value["seq"] = newest["seq"] + 1 if newest is not None else 1
    body = json.dumps(value)
    with open(path(folder, _COPIES[1 - at if at >= 0 else 0]), "w") as f:
        f.write(body + "\n" + _checksum(body))
        f.flush()
        fsync = getattr(os, "fsync", None)
        if fsync is not None:
            fsync(f.fileno())  # CPython: on the disk before anything is said about it
    return value


def root_version(folder=None):
    """The version the USB deploy wrote (its manifest.json), or None when run from sources."""
    try:
        with open(path(folder, "manifest.json")) as f:
            return json.loads(f.read()).get("firmware_version")
    except (OSError, ValueError, AttributeError):
        return None


def boot(folder=None):
    """Count this start and choose the version: the folder to import it from (None: the
    root), after a rollback when a new version used up its starts."""
    state = read(folder)
    if state is not None and state.get("trial"):
        if state.get("boots", 0) >= _BOOT_TRIES:
            reason = "it did not start %d times in a row" % _BOOT_TRIES
            print("update: version %s %s; back to the previous one" % (state["version"], reason))
            state = rolled_back(state, reason)
        else:
            state["boots"] = state.get("boots", 0) + 1
            print("update: version %s on trial, start %d" % (state["version"], state["boots"]))
        state = write(folder, state)
    slots.state = state
    if state is None or not state["slot"]:
        slots.running = (state or {}).get("version") or root_version(folder)
        return None
    slots.running = state["version"]
    if state.get("trial"):
        _watch(folder)
    return path(folder, FOLDER, state["slot"])


def _watch(folder):
    """Start the board's watchdog before a version on trial runs any of its code: one that
    hangs before it would start it (a busy loop at import, say) restarts the board, and
    that start counts against it as a crash does. The version's own hal.watchdog() hands
    out this one (slots.watchdog) and the version feeds it."""
    try:
        os.stat(path(folder, _NO_WATCHDOG_FLAG))
        return
    except OSError:
        pass
    try:
        import machine

        slots.watchdog = machine.WDT(timeout=_TRIAL_WATCHDOG_MS)
    except (ImportError, AttributeError):
        pass  # the unix port has none (unless the simulated board brings one)


def rolled_back(was, reason):
    return {
        "slot": was.get("previous", ""),
        "version": was.get("previous_version", ""),
        "previous": "",
        "previous_version": "",
        "trial": False,
        "boots": 0,
        "told": {"state": "rolled_back", "version": was["version"], "reason": reason},
    }
