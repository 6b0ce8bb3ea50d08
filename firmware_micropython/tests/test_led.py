"""The status LED: one pattern per state, and only pattern changes are announced."""

import led
from support import raises


class Lamp:
    """The LED boundary: records levels and announced patterns."""

    def __init__(self):
        self.levels = []
        self.shown = []

    def set(self, on):
        self.levels.append(on)

    def show(self, pattern):
        self.shown.append(pattern)


def test_every_state_has_its_own_pattern():
    states = ("portal", "joining", "discovering", "linked", "nodata")
    timings = [led.PATTERNS[s] for s in states]
    for i, t in enumerate(timings):
        assert t not in timings[:i]


def test_levels_follow_the_timings():
    assert led.level_at("joining", 0) is True
    assert led.level_at("joining", 150) is False
    assert led.level_at("joining", 250) is True  # it repeats
    assert led.level_at("portal", 250) is True  # the second blink of the pair
    assert led.level_at("portal", 350) is False
    assert led.level_at("linked", 123456) is True
    assert led.level_at("off", 5) is False


def test_next_change_says_when_the_led_switches():
    assert led.next_change("discovering", 100) == 400
    assert led.next_change("discovering", 700) == 300
    assert led.next_change("nodata", 1999) == 1
    assert led.next_change("linked", 10) is None
    assert led.next_change("off", 10) is None


def test_show_announces_changes_only():
    lamp = Lamp()
    status = led.Led(lamp)
    assert lamp.levels == [False]
    status.show("joining")
    status.show("joining")
    status.show("linked")
    assert lamp.shown == ["joining", "linked"]
    with raises(ValueError, match="no LED pattern"):
        status.show("disco")
    assert status.pattern == "linked"


async def test_the_blink_task_drives_the_led():
    import asyncio

    lamp = Lamp()
    status = led.Led(lamp)
    status.show("joining")
    task = asyncio.create_task(status.run())
    await asyncio.sleep(0.45)
    status.show("linked")
    await asyncio.sleep(0.1)
    task.cancel()
    blinking = lamp.levels[1:]
    assert blinking.count(True) >= 2 and blinking.count(False) >= 2
    assert lamp.levels[-1] is True  # steady on once linked
