"""The button: debounced, and told apart by how long it was held.

Released before 1 s: "press"; 1 to 5 s: "long"; 5 to 12 s: "portal". Held 12 s: "factory
reset", reported at once so the needle can confirm it while the finger is still down.
"""

from micropython import const

_PRESS = const("press")
_LONG = const("long")
_PORTAL = const("portal")
_FACTORY_RESET = const("factory reset")

_DEBOUNCE_MS = const(30)
_LONG_MS = const(1000)
_PORTAL_MS = const(5000)
_FACTORY_RESET_MS = const(12000)
_POLL_MS = const(10)


def _diff(later, earlier):
    import hal

    return hal.ticks_diff(later, earlier)


class Button:
    """Turns raw readings of a pin into events; feed it `poll(now_ms)` every few ms."""

    def __init__(self, pressed, ticks_diff=None):
        self._pressed = pressed  # () -> bool, the undebounced pin
        self._diff = ticks_diff or _diff
        self._raw = False
        self._raw_since = None
        self.down = False  # the debounced state
        self._down_at = 0
        self._reset_told = False

    def poll(self, now):
        """Read the pin at time `now` (ms ticks); return an event or None."""
        raw = bool(self._pressed())
        if self._raw_since is None or raw != self._raw:
            self._raw = raw
            self._raw_since = now
        stable = self._diff(now, self._raw_since) >= _DEBOUNCE_MS
        if stable and raw != self.down:
            self.down = raw
            if raw:
                self._down_at = self._raw_since
                self._reset_told = False
                return None
            return self._released(self._diff(self._raw_since, self._down_at))
        if self.down and not self._reset_told and self.held_ms(now) >= _FACTORY_RESET_MS:
            self._reset_told = True
            return _FACTORY_RESET
        return None

    def held_ms(self, now):
        """How long the button has been held down (0 when it is up)."""
        return self._diff(now, self._down_at) if self.down else 0

    def _released(self, held):
        if self._reset_told:
            return None  # the factory reset was already reported
        if held >= _PORTAL_MS:
            return _PORTAL
        if held >= _LONG_MS:
            return _LONG
        return _PRESS
