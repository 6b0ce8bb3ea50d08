"""Reconnect delays: a random first wait, then x1.6 each time, capped, reset once healthy."""

FIRST_MIN_S = 0.5
FIRST_SPAN_S = 1.0
FACTOR = 1.6
CAP_S = 30.0
HEALTHY_S = 60.0


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
            self.delay = FIRST_MIN_S + FIRST_SPAN_S * self._rand()
        else:
            self.delay = min(CAP_S, self.delay * FACTOR)
        self.attempts += 1
        return self.delay

    def reset(self):
        """Start again from a short first delay."""
        self.delay = 0.0
        self.attempts = 0

    def reset_if_healthy(self, linked_seconds):
        """Reset when the link that just ended had lived HEALTHY_S or more; say if it did."""
        if linked_seconds >= HEALTHY_S:
            self.reset()
            return True
        return False
