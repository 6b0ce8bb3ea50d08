"""What the running firmware knows of its start (pointer.py chose it): the version, whether
it is on trial, and what the PC must hear of an update. Kept small: it stays loaded in
every mode, while pointer.py, which reads and writes the pointer, is loaded only to write.

This module, pointer.py, main.py and boot.py are never carried by an update (the PC
leaves them out), so they are always the root's.
"""

import os

from micropython import const

_LINK_DEADLINE_S = const(180)  # a new version must link to its PC this soon after it starts

# what this start runs, set by pointer.boot(): the pointer (None: the root's version) and
# its version (None when run from sources)
state = None
running = None
# the board's watchdog, when pointer.boot() started it for a version on trial: the board
# has one, so hal.watchdog() hands out this one rather than starting it twice
watchdog = None


def deadline_s():
    """Seconds a new version has to link; the simulator may shorten it (SYSBOY_SIM_TRIAL_S)."""
    getenv = getattr(os, "getenv", None)
    given = getenv("SYSBOY_SIM_TRIAL_S") if getenv else None
    return int(given) if given and given.isdigit() else _LINK_DEADLINE_S


def on_trial():
    """True while the version running now waits for its first proven link."""
    return state is not None and bool(state.get("trial"))


def roll_back(reason, folder=None):
    """Point back at the previous version (the caller resets the board); False if the
    running version is not on trial."""
    global state
    if not on_trial():
        return False
    import pointer

    state = pointer.write(folder, pointer.rolled_back(state, reason))
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
    import pointer

    value = dict(state)
    value["trial"] = False
    value["boots"] = 0
    value.pop("told", None)
    state = pointer.write(folder, value)
