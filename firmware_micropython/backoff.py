"""Reconnect delays: a random first wait, then x1.6 each time, capped, reset once healthy."""

from micropython import const

_FIRST_MIN_S = const(0.5)
_FIRST_SPAN_S = const(1.0)
_FACTOR = const(1.6)
_CAP_S = const(30.0)
_HEALTHY_S = const(60.0)


def _random():
    import random

    return random.random()


class Backoff:
    """Delays between reconnect attempts; `rand()` returns a float in [0, 1)."""

    def __init__(self, rand=_random):
        self._rand = rand
        self.delay = 0.0
        self.attempts = 0

    def next(self):
        """The delay before the next attempt, in seconds."""
        if self.attempts == 0:
            # Spread the first retry so meters that lost the same PC do not return in step.
            self.delay = _FIRST_MIN_S + _FIRST_SPAN_S * self._rand()
        else:
            self.delay = min(_CAP_S, self.delay * _FACTOR)
        self.attempts += 1
        return self.delay

    def reset(self):
        """Start again from a short first delay."""
        self.delay = 0.0
        self.attempts = 0

    def reset_if_healthy(self, linked_seconds):
        """Reset when the link that just ended had lived _HEALTHY_S or more; say if it did."""
        if linked_seconds >= _HEALTHY_S:
            self.reset()
            return True
        return False
