"""The meter's needles: calibration, 50 Hz ballistics, raw mode, park, sweep and identify.

The math is pure (`Calibration`, `glide`, `Needle.step`); only `Needles.run`, which moves
every needle of the meter in one task, needs a clock.
"""

import math

from micropython import const

_TICK_MS = const(20)  # 50 Hz
_MAX_STEP_MS = const(100)  # after a stall the needle still glides instead of leaping
# closer than half a step of the printed 4th decimal counts as arrived
_ARRIVED = const(0.00005)
_LINEAR = const(((0.0, 0.0), (100.0, 1.0)))
_SWEEP = const(((1.0, 1200), (1.0, 300), (0.0, 1200)))  # (fraction, ms to get there)
_IDENTIFY_SWING = const(0.15)
_IDENTIFY_LEG_MS = const(180)
_RAW_TOP = const(1.05)  # raw mode's ceiling, in full scales (calibration needs a little headroom)
# raw mode's fastest travel: the whole output range in this many ms, so a PC alternating
# 0 and full scale moves the needle like a quick sweep instead of slamming it into its stops
_RAW_SLEW_MS = const(250)


class Calibration:
    """Percent of the metric -> output fraction, piecewise-linear through 2..11 points.

    Outside the table the nearest segment is extended, then clamped to 0..1.
    """

    def __init__(self, points=_LINEAR):
        if not 2 <= len(points) <= 11:
            raise ValueError("calibration needs 2 to 11 points")
        self.points = [(float(p), float(f)) for p, f in points]
        for i in range(1, len(self.points)):
            if self.points[i][0] <= self.points[i - 1][0]:
                raise ValueError("calibration percents must strictly increase")

    def fraction(self, percent):
        """The output fraction that shows `percent` on the scale."""
        points = self.points
        i = 1
        last = len(points) - 1
        while i < last and percent > points[i][0]:
            i += 1
        p0, f0 = points[i - 1]
        p1, f1 = points[i]
        value = f0 + (percent - p0) * (f1 - f0) / (p1 - p0)
        return 0.0 if value <= 0.0 else (1.0 if value >= 1.0 else value)

    def as_list(self):
        """The points as lists, for JSON."""
        return [[p, f] for p, f in self.points]


def glide(position, target, dt_ms, tau_ms):
    """One step of a first-order glide: after `tau_ms` the gap has shrunk to 1/e."""
    if tau_ms <= 0:
        return target
    return target + (position - target) * math.exp(-dt_ms / tau_ms)


class Needle:
    """Where the needle should be, and the output that puts it there."""

    def __init__(self, output, points=_LINEAR, smoothing_ms=300):
        self.output = output
        self.calibration = Calibration(points)
        self.smoothing_ms = smoothing_ms
        self.position = 0.0
        self.target = 0.0  # output fraction the glide heads for
        self.percent = None  # the last sample shown; None while parked
        self.raw = None  # a fraction set by the PC, bypassing calibration and smoothing
        self._moves = []  # (fraction, ms) legs of a sweep or identify still to play
        self._leg_from = 0.0
        self._leg_ms = 0
        self._wake = None
        output.write(0.0)

    # -- what to show -------------------------------------------------------------

    def show(self, percent):
        """Show a sample: `percent` of the scale, through the calibration."""
        self.percent = percent
        self.target = self.calibration.fraction(percent)
        self._poke()

    def set_calibration(self, points):
        """Use new calibration points; the shown value moves to its new place smoothly."""
        self.calibration = Calibration(points)
        if self.percent is not None:
            self.target = self.calibration.fraction(self.percent)
        self._poke()

    def set_raw(self, fraction):
        """Hold the output at `fraction` exactly (None ends raw mode and glides back), never
        above _RAW_TOP times the meter's full scale: past that the meter is driven beyond its
        design, whoever asks. The output travels there at most _RAW_SLEW_MS per full range."""
        import hal

        top = min(1.0, _RAW_TOP * hal.FULL_SCALE)
        self.raw = None if fraction is None else min(top, max(0.0, float(fraction)))
        self._poke()

    def park(self):
        """Glide to 0 and forget the shown value (raw mode ends too)."""
        self.percent = None
        self.raw = None
        self.target = 0.0
        self._poke()

    @property
    def parked(self):
        """True when nothing is shown: the needle rests, or glides, at 0."""
        return self.percent is None and self.raw is None

    def sweep(self):
        """Sweep to full scale and back, then carry on."""
        self._play(_SWEEP)

    def identify(self):
        """Wiggle around the current place, so the user sees which meter this is."""
        here = self.position
        up = min(1.0, here + _IDENTIFY_SWING)
        down = max(0.0, here - _IDENTIFY_SWING)
        legs = []
        for _ in range(3):
            legs.append((up, _IDENTIFY_LEG_MS))
            legs.append((down, _IDENTIFY_LEG_MS))
        legs.append((here, _IDENTIFY_LEG_MS))
        self._play(legs)

    @property
    def moving(self):
        """True while a sweep or identify plays."""
        return bool(self._moves)

    # -- the motion -----------------------------------------------------------------

    def settled(self):
        """True when nothing will move until something new is shown."""
        if self._moves:
            return False
        goal = self.raw if self.raw is not None else self.target
        return self.position == goal

    def step(self, dt_ms):
        """Advance the motion by `dt_ms`, write the output if it moved; return the position."""
        dt_ms = min(dt_ms, _MAX_STEP_MS)
        if self._moves:
            new = self._step_moves(dt_ms)
        elif self.raw is not None:
            most = dt_ms / _RAW_SLEW_MS
            new = max(self.position - most, min(self.position + most, self.raw))
        else:
            new = glide(self.position, self.target, dt_ms, self.smoothing_ms)
            if abs(new - self.target) < _ARRIVED:
                new = self.target
        if new != self.position:
            self.position = new
            self.output.write(new)
        return new

    def _play(self, legs):
        self._moves = list(legs)
        self._leg_from = self.position
        self._leg_ms = 0
        self._poke()

    def _step_moves(self, dt_ms):
        goal, duration = self._moves[0]
        self._leg_ms += dt_ms
        if self._leg_ms >= duration:
            self._moves.pop(0)
            self._leg_from = goal
            self._leg_ms = 0
            return goal
        return self._leg_from + (goal - self._leg_from) * self._leg_ms / duration

    def _poke(self):
        if self._wake is not None:
            self._wake.set()


class Needles:
    """The meter's needles (1 to 4), moved by one 50 Hz task: one task, whatever their count."""

    def __init__(self, needles):
        self.all = list(needles)

    def pick(self, number):
        """The needles a message names: needle `number` (1..), or all of them when None."""
        if number is None:
            return self.all
        if 1 <= number <= len(self.all):
            return [self.all[number - 1]]
        return []

    def park(self):
        """Send every needle to rest."""
        for needle in self.all:
            needle.park()

    @property
    def parked(self):
        """True when no needle shows anything."""
        return all(needle.parked for needle in self.all)

    @property
    def moving(self):
        """True while a sweep or identify plays on some needle."""
        return any(needle.moving for needle in self.all)

    async def run(self):
        """Move the needles at 50 Hz while one has somewhere to go; sleep when all arrived."""
        import asyncio

        import hal

        wake = asyncio.Event()
        for needle in self.all:
            needle._wake = wake
        last = hal.ticks_ms()
        while True:
            if all(needle.settled() for needle in self.all):
                wake.clear()
                await wake.wait()
                last = hal.ticks_ms()  # they rested: the glide starts from now
            await asyncio.sleep(_TICK_MS / 1000)
            now = hal.ticks_ms()
            dt = hal.ticks_diff(now, last)
            for needle in self.all:
                needle.step(dt)
            last = now
