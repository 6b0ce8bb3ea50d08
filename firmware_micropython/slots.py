"""Which firmware version starts: the slot pointer, the boot counter and the rollback.

A USB deploy writes the firmware into the flash root. An update over Wi-Fi (ota.py) writes
the next version beside it, into `ota/a` or `ota/b`, and switches to it by writing the
pointer. The pointer is kept twice, `ota-1.json` and `ota-2.json`, each with a sequence
number and a checksum; a write replaces the older copy, so a power cut at any instant
leaves the newest whole copy naming the old version or the new one. (A rename is not
enough: FAT renames over a file by deleting it first, and a half-written directory sector
can then lose both names.) No pointer: the root's version starts.

A new version starts on trial. It gets BOOT_TRIES starts and deadline_s() seconds to link
to its PC; the first proven link confirms it. A fourth start while still on trial, or the
deadline passing, points `ota.json` back at the previous version, which then tells the PC.

This module, main.py and boot.py are the part that brings a bad version back: main.py
imports it before any version's folder is on sys.path, so an update never replaces it,
and it imports no other firmware module (that would pin the root's copy of it).
"""

import json
import os

COPIES = ("ota-1.json", "ota-2.json")
FOLDER = "ota"
SLOTS = ("a", "b")
BOOT_TRIES = 3
LINK_DEADLINE_S = 180  # a new version must link to its PC this soon after it starts

# what this start runs, set by boot(): the pointer (None: the root's version) and its version
state = None
running = None


def flash():
    """The flash root: the board's "", or the simulator's folder (as hal.sim.device_dir)."""
    getenv = getattr(os, "getenv", None)  # the unix port and CPython have it, the board not
    if getenv is None:
        return ""
    folder = getenv("SYSBOY_DEVICE_DIR") or "./device-sim"
    while len(folder) > 1 and folder.endswith("/"):
        folder = folder[:-1]
    return folder


def deadline_s():
    """Seconds a new version has to link; the simulator may shorten it (SYSBOY_SIM_TRIAL_S)."""
    getenv = getattr(os, "getenv", None)
    given = getenv("SYSBOY_SIM_TRIAL_S") if getenv else None
    return int(given) if given and given.isdigit() else LINK_DEADLINE_S


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
    for index in range(len(COPIES)):
        value = _copy(folder, COPIES[index])
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
    with open(path(folder, COPIES[1 - at if at >= 0 else 0]), "w") as f:
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
    global state, running
    state = read(folder)
    if state is not None and state.get("trial"):
        if state.get("boots", 0) >= BOOT_TRIES:
            reason = "it did not start %d times in a row" % BOOT_TRIES
            print("update: version %s %s; back to the previous one" % (state["version"], reason))
            state = _rolled_back(state, reason)
        else:
            state["boots"] = state.get("boots", 0) + 1
            print("update: version %s on trial, start %d" % (state["version"], state["boots"]))
        state = write(folder, state)
    if state is None or not state["slot"]:
        running = (state or {}).get("version") or root_version(folder)
        return None
    running = state["version"]
    return path(folder, FOLDER, state["slot"])


def _rolled_back(was, reason):
    return {
        "slot": was.get("previous", ""),
        "version": was.get("previous_version", ""),
        "previous": "",
        "previous_version": "",
        "trial": False,
        "boots": 0,
        "told": {"state": "rolled_back", "version": was["version"], "reason": reason},
    }


def on_trial():
    """True while the version running now waits for its first proven link."""
    return state is not None and bool(state.get("trial"))


def roll_back(reason, folder=None):
    """Point back at the previous version (the caller resets the board); False if the
    running version is not on trial."""
    global state
    if not on_trial():
        return False
    state = _rolled_back(state, reason)
    state = write(folder, state)
    return True


def note():
    """What the PC must hear on this link: the new version confirmed, or a rollback; None."""
    if state is None:
        return None
    if state.get("trial"):
        return {"state": "confirmed", "version": state["version"]}
    return state.get("told")


def noted(folder=None):
    """The PC heard note(): the version is confirmed and the note forgotten (one write)."""
    global state
    if note() is None:
        return
    state = dict(state)
    state["trial"] = False
    state["boots"] = 0
    state.pop("told", None)
    state = write(folder, state)
