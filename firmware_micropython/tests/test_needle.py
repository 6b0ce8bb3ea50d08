"""The needle: calibration math, ballistics convergence, raw mode, park, sweep, identify."""

import math

from needle import Calibration, Needle, Needles, glide
from support import raises

# needle.py's private constants
TICK_MS = 20
MAX_STEP_MS = 100
ARRIVED = 0.00005
RAW_SLEW_MS = 250


class Meter:
    """The output boundary: records every write, like a DAC would take them."""

    def __init__(self):
        self.writes = []

    def write(self, fraction):
        self.writes.append(fraction)


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol


def run(needle, ms, dt=TICK_MS):
    """Step the needle for `ms`; the positions after each step."""
    seen = []
    for _ in range(int(ms // dt)):
        seen.append(needle.step(dt))
    return seen


def test_linear_calibration_is_identity_scaled():
    cal = Calibration()
    assert cal.fraction(0) == 0.0
    assert close(cal.fraction(37.5), 0.375)
    assert cal.fraction(100) == 1.0


def test_table_points_are_exact_and_segments_linear():
    cal = Calibration([[0, 0.0], [50, 0.8], [100, 1.0]])
    assert close(cal.fraction(50), 0.8)
    assert close(cal.fraction(25), 0.4)
    assert close(cal.fraction(75), 0.9)
    assert close(cal.fraction(100), 1.0)


def test_outside_the_table_extends_the_end_segments_then_clamps():
    cal = Calibration([[10, 0.1], [20, 0.3], [90, 0.9]])
    assert close(cal.fraction(5), 0.0)  # 0.1 - 5 * 0.02 = 0.0
    assert cal.fraction(0) == 0.0  # would be -0.1: clamped
    assert close(cal.fraction(95), 0.9 + 5 * (0.6 / 70))
    assert cal.fraction(1000) == 1.0


def test_eleven_points_are_followed_segment_by_segment():
    points = [[i * 10, (i * 10) ** 2 / 10000] for i in range(11)]
    cal = Calibration(points)
    for p, f in points:
        assert close(cal.fraction(p), f)
    # halfway between 40 (0.16) and 50 (0.25)
    assert close(cal.fraction(45), 0.205)


def test_bad_tables_are_refused():
    with raises(ValueError):
        Calibration([[0, 0]])
    with raises(ValueError):
        Calibration([[i, i / 20] for i in range(12)])
    with raises(ValueError, match="increase"):
        Calibration([[0, 0], [50, 0.5], [50, 0.6]])


def test_glide_shrinks_the_gap_to_1_over_e_per_time_constant():
    assert close(glide(0.0, 1.0, 300, 300), 1 - math.exp(-1))
    assert close(glide(1.0, 0.0, 600, 300), math.exp(-2))
    assert glide(0.2, 0.7, 20, 0) == 0.7  # no smoothing asked for


def test_ballistics_converge_within_five_time_constants_without_overshoot():
    meter = Meter()
    needle = Needle(meter, smoothing_ms=300)
    needle.show(80)
    seen = run(needle, 5 * 300)
    # strictly rising, never past the target
    assert all(seen[i + 1] > seen[i] for i in range(len(seen) - 1))
    assert max(seen) < 0.8
    assert abs(0.8 - seen[-1]) <= 0.8 * math.exp(-5) + 1e-9
    run(needle, 2000)
    assert needle.position == 0.8  # arrives exactly, then stops writing
    assert needle.settled()
    writes = len(meter.writes)
    run(needle, 200)
    assert len(meter.writes) == writes


def test_the_needle_never_jumps_even_after_a_stall():
    needle = Needle(Meter(), smoothing_ms=300)
    needle.show(100)
    first = needle.step(60000)  # the loop was blocked for a minute
    assert close(first, 1 - math.exp(-MAX_STEP_MS / 300))
    assert first < 0.5


def test_no_smoothing_goes_straight_there():
    needle = Needle(Meter(), smoothing_ms=0)
    needle.show(40)
    assert needle.step(TICK_MS) == 0.4


def test_calibration_applies_to_the_target_and_a_new_table_glides():
    needle = Needle(Meter(), [[0, 0], [50, 0.8], [100, 1]], smoothing_ms=100)
    needle.show(25)
    assert close(needle.target, 0.4)
    run(needle, 3000)
    assert close(needle.position, 0.4)
    needle.set_calibration([[0, 0], [100, 1]])
    assert close(needle.target, 0.25)
    step = needle.step(TICK_MS)
    assert 0.25 < step < 0.4  # on its way, not there at once


def test_raw_mode_bypasses_calibration_and_smoothing_until_null():
    meter = Meter()
    needle = Needle(meter, [[0, 0], [50, 0.8], [100, 1]], smoothing_ms=300)
    needle.show(50)
    run(needle, 200)
    needle.set_raw(0.1)
    run(needle, RAW_SLEW_MS)
    assert needle.step(TICK_MS) == 0.1  # exactly, within the slew limit's time
    needle.show(90)  # samples keep coming; raw mode wins
    assert needle.step(TICK_MS) == 0.1
    assert not needle.parked
    needle.set_raw(None)
    back = needle.step(TICK_MS)
    assert 0.1 < back < needle.target  # glides back to the calibrated value
    assert close(needle.target, 0.96)


def test_park_glides_to_zero_and_forgets_the_value():
    needle = Needle(Meter(), smoothing_ms=200)
    needle.show(60)
    run(needle, 2000)
    needle.set_raw(0.9)
    needle.park()
    assert needle.parked
    seen = run(needle, 200)
    assert seen[0] > 0.3  # a glide from where it was, not a jump to 0
    seen = run(needle, 3000)
    assert seen[-1] == 0.0
    assert needle.settled()


def test_sweep_reaches_full_scale_and_returns_to_the_shown_value():
    needle = Needle(Meter(), smoothing_ms=100)
    needle.show(30)
    run(needle, 1000)
    needle.sweep()
    assert needle.moving
    seen = run(needle, 5000)
    assert max(seen) == 1.0
    assert min(seen[seen.index(1.0) :]) < 0.05  # back down to the start of the scale
    assert not needle.moving
    assert close(needle.position, 0.3, ARRIVED)


def test_identify_wiggles_around_the_current_place():
    needle = Needle(Meter(), smoothing_ms=100)
    needle.show(50)
    run(needle, 1000)
    needle.identify()
    seen = run(needle, 3000)
    assert max(seen) > 0.6
    assert min(seen) < 0.4
    assert close(seen[-1], 0.5, ARRIVED)


def test_output_starts_at_zero():
    meter = Meter()
    Needle(meter)
    assert meter.writes == [0.0]


def test_needles_are_picked_by_number_or_all_together():
    one, two = Needle(Meter()), Needle(Meter())
    needles = Needles([one, two])
    assert needles.pick(None) == [one, two]
    assert needles.pick(1) == [one] and needles.pick(2) == [two]
    assert needles.pick(3) == [] and needles.pick(0) == []
    assert needles.parked and not needles.moving
    two.show(40)
    assert not needles.parked
    one.sweep()
    assert needles.moving
    needles.park()
    assert one.parked and two.parked


async def test_one_task_moves_every_needle_each_to_its_own_place():
    import asyncio

    first, second = Meter(), Meter()
    one = Needle(first, [[0, 0], [100, 0.5]], smoothing_ms=0)
    two = Needle(second, [[0, 0.1], [100, 0.9]], smoothing_ms=0)
    task = asyncio.create_task(Needles([one, two]).run())
    await asyncio.sleep(0.05)  # the task sleeps: nothing to move yet
    one.show(100)
    two.show(50)
    for _ in range(100):
        if first.writes[-1] == 0.5 and close(second.writes[-1], 0.5):
            break
        await asyncio.sleep(TICK_MS / 1000)
    task.cancel()
    assert first.writes[-1] == 0.5  # full scale on needle 1's own calibration
    assert close(second.writes[-1], 0.5)  # half scale on needle 2's own


def test_raw_mode_stops_at_105_percent_of_full_scale():
    import hal

    real = hal.FULL_SCALE
    hal.FULL_SCALE = 2.5 / 3.3  # the ESP32 build: 2.5 V of the DAC's 3.3 V is 100 %
    try:
        out = Meter()
        meter = Needle(out)
        meter.set_raw(1.0)
        run(meter, 2 * RAW_SLEW_MS)
        assert close(max(out.writes), 1.05 * 2.5 / 3.3)
        assert close(out.writes[-1], 1.05 * 2.5 / 3.3)
        meter.set_raw(0.5)
        run(meter, 2 * RAW_SLEW_MS)
        assert out.writes[-1] == 0.5  # below the ceiling: exactly as asked
    finally:
        hal.FULL_SCALE = real


def test_raw_mode_is_slew_limited_so_a_slammed_needle_only_sweeps():
    out = Meter()
    needle = Needle(out)
    most = TICK_MS / RAW_SLEW_MS  # the farthest one 50 Hz step may go
    needle.set_raw(1.0)
    up = run(needle, RAW_SLEW_MS + 2 * TICK_MS)
    assert up[-1] == 1.0  # it gets there, exactly
    assert len([p for p in up if p < 1.0]) >= RAW_SLEW_MS // TICK_MS - 1  # not at once
    # a PC alternating 0 and full scale at every step: the needle hardly moves
    for i in range(50):
        needle.set_raw(float(i % 2))
        needle.step(TICK_MS)
    w = out.writes
    steps = [abs(w[i] - w[i - 1]) for i in range(1, len(w))]
    assert max(steps) <= most + 1e-9
    assert out.writes[-1] >= 1.0 - 2 * most  # it stayed near the top, never slammed to 0
    # a stall does not let it leap: one step covers at most MAX_STEP_MS of travel
    needle.set_raw(0.0)
    assert needle.step(5000) >= 1.0 - MAX_STEP_MS / RAW_SLEW_MS - 1e-9
