"""Runs the device (after boot.py). On a desktop: `micropython firmware_micropython/main.py`.

It starts the version pointer.py chooses (an update's folder first on sys.path, or the
root's), and restarts the board when that version fails to start, so the failure counts
against it. An update never replaces this file.
"""

import gc
import sys

import pointer
import slots

folder = pointer.boot()
del pointer
sys.modules.pop("pointer", None)  # loaded again only to write the pointer (slots.py)
gc.collect()
if folder is not None:
    sys.path.insert(0, folder)
try:
    import app

    app.run()
except Exception as exc:  # a version that cannot start: count it, start again
    print("start failed: %r" % (exc,))
    if not slots.on_trial():
        raise  # the version that was confirmed: its traceback is the best help, on USB
    try:
        import machine

        reset = machine.reset
    except (ImportError, AttributeError):  # the unix port's machine has no reset
        reset = None
    if reset is None:  # the simulator: its reset leaves the process (hal.sim.reset)
        print("reset")
        raise SystemExit(3) from None
    reset()
