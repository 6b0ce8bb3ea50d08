"""The simulator: the same API as the board, on a desktop (MicroPython unix port or CPython).

Contract relied on by tests and `sysboy simulate`: every change of needle 1's output prints
`needle <fraction, 4 decimals>` (needle 2's `needle2 <fraction>`, and so on) and every LED
pattern change prints `led <pattern>`, one line each on stdout. The device's flash is the
folder in SYSBOY_DEVICE_DIR.
The Wi-Fi radio, and the scenario that drives it, is in hal/simradio.py.
"""

import os
import sys
import time

from micropython import const

FULL_SCALE = 1.0  # the virtual meter has no sense resistor: 100 % is the top of the output
_time_ticks_ms = getattr(time, "ticks_ms", None)
_time_ticks_diff = getattr(time, "ticks_diff", None)


def _env(name, default=""):
    getenv = getattr(os, "getenv", None)
    value = getenv(name) if getenv else None
    return value if value else default


def _say(line):
    print(line)
    flush = getattr(sys.stdout, "flush", None)
    if flush:
        flush()  # CPython buffers a piped stdout; readers need each line at once


def board():
    """The simulated board's name."""
    return "sim " + sys.implementation.name


def output_kind():
    """Always "sim": the output is a printed line."""
    return "sim"


class Output:
    """One meter's drive: prints `needle 0.1234` (needle 2: `needle2 0.1234`) on each change."""

    def __init__(self, pin=None, kind=None, number=1):
        self.pin = pin
        self.kind = "sim"
        self.number = number
        self._name = "needle" if number == 1 else "needle%d" % number
        self.fraction = None
        self.line = None

    def write(self, fraction):
        """Drive the output to `fraction` of full scale (clamped to 0..1)."""
        fraction = 0.0 if fraction <= 0.0 else (1.0 if fraction >= 1.0 else float(fraction))
        self.fraction = fraction
        line = "%s %.4f" % (self._name, fraction)
        if line != self.line:
            self.line = line
            _say(line)


class Button:
    """Held while the file `button` exists in the device folder, or while `.held` is set."""

    def __init__(self, pin=None):
        self.pin = pin
        self.held = False
        self._file = device_dir() + "/button"

    def pressed(self):
        """True while the button is held down."""
        if self.held:
            return True
        try:
            os.stat(self._file)
            return True
        except OSError:
            return False


class Led:
    """The status LED: records its level; prints `led <pattern>` when the pattern changes."""

    def __init__(self, pin=None):
        self.pin = pin
        self.on = False
        self.pattern = ""

    def set(self, on):
        """Light the LED or switch it off."""
        self.on = bool(on)

    def show(self, pattern):
        """Announce the pattern now blinking."""
        if pattern != self.pattern:
            self.pattern = pattern
            _say("led " + pattern)


def unique_id():
    """A MAC-like id: SYSBOY_SIM_ID, else derived from the device folder (stable per folder)."""
    given = _env("SYSBOY_SIM_ID")
    if given:
        return given
    import binascii
    import hashlib

    folder = device_dir()
    if not folder.startswith("/"):
        folder = os.getcwd() + "/" + folder
    digest = hashlib.sha256(folder.encode()).digest()
    return "02" + binascii.hexlify(digest[:5]).decode()  # locally administered, like a MAC


def device_dir():
    """The simulated flash: SYSBOY_DEVICE_DIR, default ./device-sim (created if missing)."""
    folder = _env("SYSBOY_DEVICE_DIR", "./device-sim")
    while len(folder) > 1 and folder.endswith("/"):
        folder = folder[:-1]
    try:
        os.mkdir(folder)
    except OSError:
        pass  # already there
    return folder


class Watchdog:
    """Records feeds; the simulator has nothing to reset (timeout None: switched off)."""

    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.feeds = 0
        self.last_feed = None

    def feed(self):
        self.feeds += 1
        self.last_feed = ticks_ms()


_NO_WATCHDOG_FLAG = const("nowatchdog")  # as on the board: written by a deploy while it copies


def watchdog(timeout_ms):
    """A watchdog that only records its feeds, or the simulated board's own `machine.WDT`
    when it has one (tests/firmware/watchdog_board.py: it resets an unfed board); switched
    off while the deploy flag file exists."""
    started = getattr(sys.modules.get("slots"), "watchdog", None)
    if started is not None:
        return started  # started by the launcher for a version on trial (pointer.py)
    try:
        os.stat(device_dir() + "/" + _NO_WATCHDOG_FLAG)
    except OSError:
        try:
            import machine

            board = getattr(machine, "WDT", None)
        except ImportError:  # CPython
            board = None
        return Watchdog(timeout_ms) if board is None else board(timeout=timeout_ms)
    _say("watchdog off: a firmware deploy is under way (file %s)" % _NO_WATCHDOG_FLAG)
    return Watchdog(None)


def reset():
    """The simulator's reset: leave the process (the caller may start it again)."""
    _say("reset")
    raise SystemExit(3)


def reset_cause():
    """Why the simulated board started: SYSBOY_SIM_RESET_CAUSE, else "power on"."""
    return _env("SYSBOY_SIM_RESET_CAUSE", "power on")


def output_pins():
    """The simulator's output "pins" for needles 1 and 2 (any number works)."""
    return (1, 2)


def mem_free():
    """Bytes free in the heap after a collection (MicroPython); 0 on CPython, which has none."""
    import gc

    mem = getattr(gc, "mem_free", None)
    if mem is None:
        return 0
    gc.collect()
    return mem()


def ticks_ms():
    """Milliseconds from an arbitrary point."""
    if _time_ticks_ms is not None:
        return _time_ticks_ms()
    return int(time.monotonic() * 1000)


def ticks_diff(later, earlier):
    """`later - earlier` in ms (MicroPython's ticks wrap; CPython's do not)."""
    if _time_ticks_diff is not None:
        return _time_ticks_diff(later, earlier)
    return later - earlier


def wlan_station():
    """The station interface (one object, as on the board), on the simulated radio."""
    from hal.simradio import interface

    return interface(0)


def wlan_ap():
    """The access-point interface, on the same radio."""
    from hal.simradio import interface

    return interface(1)
