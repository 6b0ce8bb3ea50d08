"""The button: debouncing and hold lengths, with the clock and the pin injected."""

from button import Button
from support import MICROPYTHON, SkipTest

# the events, as button.py names them
PRESS = "press"
LONG = "long"
PORTAL = "portal"
FACTORY_RESET = "factory reset"
DEBOUNCE_MS = 30  # button.py's


class Pin:
    """The pin boundary: the test holds the button down or lets it go."""

    def __init__(self):
        self.down = False

    def __call__(self):
        return self.down


def plain_diff(later, earlier):
    return later - earlier


class Finger:
    """Drives a Button through time, polling every `every` ms like the firmware's task."""

    def __init__(self, start=0, diff=plain_diff, every=10):
        self.pin = Pin()
        self.button = Button(self.pin, diff)
        self.now = start
        self.every = every
        self.events = []
        self.step = lambda now: now + self.every

    def hold(self, ms, down=True):
        self.pin.down = down
        for _ in range(ms // self.every):
            self.now = self.step(self.now)
            event = self.button.poll(self.now)
            if event is not None:
                self.events.append((event, self.now))
        return self

    def release(self, ms=200):
        return self.hold(ms, down=False)


def events(finger):
    return [e for e, _ in finger.events]


def test_a_short_press_is_reported_on_release():
    finger = Finger().release().hold(150).release()
    assert events(finger) == [PRESS]


def test_bounces_shorter_than_the_debounce_time_are_ignored():
    finger = Finger().release()
    for _ in range(20):  # contact chatter: 10 ms down, 10 ms up
        finger.hold(10).release(10)
    finger.release()
    assert events(finger) == []


def test_a_press_that_chatters_at_its_edges_counts_once():
    finger = Finger().release()
    finger.hold(10).release(10).hold(10).release(10).hold(300)
    finger.release(10).hold(10).release(300)
    assert events(finger) == [PRESS]


def test_hold_lengths_give_long_portal_and_factory_reset():
    assert events(Finger().release().hold(1500).release()) == [LONG]
    assert events(Finger().release().hold(4900).release()) == [LONG]
    assert events(Finger().release().hold(5100).release()) == [PORTAL]
    assert events(Finger().release().hold(11900).release()) == [PORTAL]


def test_factory_reset_is_reported_while_still_held_and_only_once():
    finger = Finger().release().hold(12500)
    assert events(finger) == [FACTORY_RESET]
    reported_at = finger.events[0][1]
    assert 12000 <= reported_at - 200 <= 12000 + DEBOUNCE_MS + 10
    finger.hold(5000).release()
    assert events(finger) == [FACTORY_RESET]  # letting go afterwards adds nothing


def test_held_time_counts_from_the_press():
    finger = Finger().release().hold(3000)
    assert 2900 <= finger.button.held_ms(finger.now) <= 3000
    finger.release()
    assert finger.button.held_ms(finger.now) == 0


def test_a_button_held_at_power_on_is_a_press_when_released():
    finger = Finger().hold(400).release()
    assert events(finger) == [PRESS]


def test_ticks_that_wrap_around_are_handled():
    if not MICROPYTHON:
        raise SkipTest("only MicroPython's ticks wrap")
    import time

    start = time.ticks_add(0, -2000)  # two seconds before the counter wraps
    finger = Finger(start, time.ticks_diff)
    finger.step = lambda now: time.ticks_add(now, finger.every)
    finger.release().hold(5500).release()
    assert events(finger) == [PORTAL]
