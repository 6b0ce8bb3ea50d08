"""The supervisor of setup and linked mode (app.py picks the mode): wires the parts
together, restarts any task that fails, feeds the watchdog.

States, each with its LED pattern: portal, joining, discovering (finding or reaching the
PC), linked, nodata (linked but nothing to show). Whenever the link ends the needle parks: a
stale value never stands.
"""

import asyncio
import gc
import sys

import hal
import led
import slots
from button import Button
from micropython import const

_MAX_QUEUED_PRESSES = const(8)
_PORTAL_MS = const(5000)  # button.py's: held this long, the button asks for the portal
_WATCHDOG_MS = const(20000)
FEED_EVERY_S = 1
_LINK_STUCK_S = const(120)  # no sign of progress from the link for this long: it hangs
_CRASH_LIMIT = const(5)  # failures in a row before the watchdog is let go and the board restarts
_HEALTHY_RUN_S = const(60)  # a task that ran this long before failing starts a fresh count
RESTART_S = 1  # times the failures in a row: the wait before a failed task starts again
_BUTTON_POLL_S = const(0.02)


def log(text):
    """One line for the serial console (the simulator's stdout)."""
    print(text)


def log_exception(where, exc):
    """The exception with its traceback, so a failure in the field can be read from USB."""
    print("error in %s: %r" % (where, exc))
    print_exception = getattr(sys, "print_exception", None)
    if print_exception is not None:
        print_exception(exc)
    else:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)


class Device:
    """The whole device: needle, LED, button, and the link to the PC."""

    def __init__(self, cfg, setup=None):
        """`setup`: why the portal opens, for a start in setup mode; None for linked mode."""
        if setup is None:
            from needle import Needles  # only in linked mode: setup only holds them at rest

            self.needles = Needles(_needles(cfg["needles"]))
        else:
            import setupmode  # only in setup mode, as the portal is

            self.needles = setupmode.Resting(hal.outputs(cfg["needles"]))
        self.needle = self.needles.all[0]  # the one a one-needle meter has
        self.led = led.Led(_hardware(hal.Led, cfg["led_pin"]))
        self.button = Button(_hardware(hal.Button, cfg["button_pin"]).pressed)
        self.presses = []  # button events waiting for a link
        self.portal_reason = None  # set when the portal must open
        self.cfg = cfg
        self.setup = setup
        self.link = None
        if setup is None:
            from link import Link  # only in linked mode: the setup heap never holds it

            self.link = Link(self, cfg)
        self.beats = {}  # task name -> ticks of its last sign of progress (None: exempt)
        self.crashes = {}  # task name -> failures in a row
        self.watchdog = None
        self.tasks = []

    # -- the supervisor ---------------------------------------------------------------

    async def supervise(self, tasks=None):
        """Start every task and feed the watchdog while all of them are alive.

        `tasks`: (name, coroutine function) pairs; the device's own by default.
        """
        if tasks is None:
            tasks = [
                ("led", self.led.run),
                ("button", self._buttons),
                ("link", self._setup if self.link is None else self.link.run),
            ]
            if self.link is not None:  # setup mode's needles rest: nothing to move
                tasks.insert(0, ("needle", self.needles.run))
        self.tasks = []
        for name, run in tasks:
            self.crashes[name] = 0
            self.beat(name)
            self.tasks.append(asyncio.create_task(self._guard(name, run)))
        self.watchdog = hal.watchdog(_WATCHDOG_MS)
        started = hal.ticks_ms()
        while True:
            if self.alive():
                self.watchdog.feed()
            self._trial(started)
            await asyncio.sleep(FEED_EVERY_S)

    def _trial(self, started):
        """A new version that has not linked to its PC in time goes back to the previous one
        (slots.py); the previous one tells the PC when it links."""
        limit = slots.deadline_s()
        if not slots.on_trial() or hal.ticks_diff(hal.ticks_ms(), started) < limit * 1000:
            return
        took = "%d min" % (limit // 60) if limit % 60 == 0 else "%d s" % limit
        log("update: no link to the PC within %s: back to the previous version" % took)
        self.needles.park()
        slots.roll_back("it did not link to the PC within " + took)
        hal.reset()

    async def _guard(self, name, run):
        """Run a task forever: log any failure, make the device safe, start it again."""
        while True:
            started = hal.ticks_ms()
            try:
                await run()
                log("task %s ended; starting it again" % name)
            except Exception as exc:  # any failure, even a bug, must not stop the device
                log_exception("task " + name, exc)
            if hal.ticks_diff(hal.ticks_ms(), started) >= _HEALTHY_RUN_S * 1000:
                self.crashes[name] = 0
            self.crashes[name] += 1
            self._make_safe(name)
            gc.collect()
            await asyncio.sleep(min(self.crashes[name], 10) * RESTART_S)

    def _make_safe(self, name):
        if name == "link":
            if self.link is not None:
                self.link.ws = None  # the link task closes its socket in a finally; forget it
            self.needles.park()
            self.led.show("nodata")
        elif name == "needle":
            self.needles.park()

    def beat(self, name):
        """Note that task `name` made progress."""
        self.beats[name] = hal.ticks_ms()

    def alive(self):
        """True when no task fails again and again and the link is not stuck."""
        if any(count >= _CRASH_LIMIT for count in self.crashes.values()):
            return False
        at = self.beats.get("link")
        return at is None or hal.ticks_diff(hal.ticks_ms(), at) <= _LINK_STUCK_S * 1000

    # -- the two modes -----------------------------------------------------------------

    async def _setup(self):
        """Setup mode: the portal until a join worked, then a restart into linked mode."""
        import setupmode

        await setupmode.run(self)

    def open_setup(self, reason):
        """Leave linked mode for the portal: restart into setup mode, saying `reason`."""
        log("portal asked for (%s): restarting into setup mode" % reason)
        self.needles.park()
        import notes

        notes.ask_setup(reason)
        hal.reset()

    # -- the button -----------------------------------------------------------------

    async def _buttons(self):
        while True:
            now = hal.ticks_ms()
            event = self.button.poll(now)
            if event == "factory reset":
                await self._factory_reset()
            elif event == "portal":
                log("button held: opening the setup portal")
                self.portal_reason = "The button was held: change the settings here."
            elif event is not None:
                self.queue_press(event)
            elif self.button.held_ms(now) >= _PORTAL_MS:
                self.led.show("portal")  # let go now and the portal opens
            await asyncio.sleep(_BUTTON_POLL_S)

    def queue_press(self, event):
        """Keep a button event for the PC (while offline only the last 8), unless it asks
        to pair: see `Link.wants_pairing`. Setup mode has no PC to tell: it keeps none."""
        if self.link is None:
            return
        if self.link.wants_pairing(event):
            return
        self.presses.append(event)
        if len(self.presses) > _MAX_QUEUED_PRESSES:
            self.presses.pop(0)

    async def _factory_reset(self):
        import factory

        await factory.reset(self)


def _hardware(part, pin):
    """`part` on the configured pin, or on the board's default one if that pin is unusable."""
    try:
        return part(pin)
    except (OSError, ValueError) as exc:  # a pin this board does not have
        log("%s: pin %r unusable (%r); using the board's default" % (part.__name__, pin, exc))
        return part()


def _needles(settings):
    """The needles the config lists, on the outputs `hal.outputs` finds for them."""
    from needle import Needle

    return [
        Needle(output, one["calibration"], one["smoothing_ms"])
        for output, one in hal.outputs(settings)
    ]


def run(cfg, setup):
    """Run the board in setup mode (`setup`: why the portal opens) or linked mode (None)."""
    device = Device(cfg, setup)
    try:
        asyncio.run(device.supervise())
    finally:
        for needle in device.needles.all:  # whatever stops the firmware, no needle stays up
            needle.output.write(0.0)
