"""The start (main.py runs it): picks the mode the board runs in, and holds nothing else.

The board runs in one of three modes and never holds two in its heap:
- setup: the portal, when no network is saved or the portal was asked for;
- linked: join, find the PC, follow it (supervisor.py runs both of these);
- update: only what taking a firmware update needs (updating.py).

Saved settings restart the board into linked mode; a request for the portal (the button
held 5 s, a wrong password) restarts it into setup, and an update's manifest from the
paired PC into update mode, as WLED, ESPHome and Tasmota do.
"""

import gc
import os
import sys

import hal
from micropython import const

_GC_EVERY_BYTES = const(4096)
_FIRST_SETUP = const("Choose the Wi-Fi network for the meter.")
_UPDATE_NOTE = const("update.txt")  # notes.py's _UPDATE: notes.ask_update writes it


def run():
    """Start the board in its mode and run it until the board stops."""
    print("boot: %s, reset cause: %s" % (hal.board(), hal.reset_cause()))
    if not _update_noted():
        # the supervisor goes in first, while the heap is in one piece: loaded after the
        # settings' code has come and gone, it would sit in their hole and the portal
        # would need about 3 KB more heap
        import supervisor
    import config
    import notes

    cfg = config.load()
    setup = notes.setup_asked()
    where = notes.update_asked()
    if setup is None and not cfg["ssid"]:
        setup = _FIRST_SETUP
    # loaded again only for a rare save (the setup form, a calibration): its code leaves
    # the heap
    del config, notes
    sys.modules.pop("config", None)
    sys.modules.pop("notes", None)
    gc.collect()
    if setup is None and where is not None and cfg["key"]:
        import updating

        _collect_often()
        updating.run(cfg, where)  # ends in a restart: into the new version or linked mode
        return
    import supervisor

    if setup is not None:
        # the setup code goes in while the heap is still in one piece: loaded later, between
        # live objects, it would leave the heap in holes
        import setupmode  # noqa: F401  (and the portal with it)
    _collect_often()
    supervisor.run(cfg, setup)


def _update_noted():
    """True when linked mode left the note that starts update mode (notes.ask_update)."""
    folder = hal.device_dir()
    try:
        os.stat(folder + ("" if folder.endswith("/") else "/") + _UPDATE_NOTE)
    except OSError:
        return False
    return True


def _collect_often():
    # collect after every 4 KB allocated, not only when an allocation fails: garbage left to
    # pile up spreads the objects that live between it, and the heap ends in holes (on the
    # 32-bit port the portal then needs about 5 KB less heap, linked mode about 2 KB)
    threshold = getattr(gc, "threshold", None)  # MicroPython's; CPython has none
    if threshold is not None:
        threshold(_GC_EVERY_BYTES)
