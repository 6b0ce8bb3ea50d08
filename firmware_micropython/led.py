"""The status LED: one blink pattern per state of the device."""

# The states, by name: "portal", "joining", "discovering", "linked", "nodata" and "off".
# Callers name them by their text: a module constant for each would cost a name in the heap.
# ms on, ms off, ... repeating; () is steadily on, None steadily off
PATTERNS = {
    "portal": (100, 100, 100, 700),  # double blink: "set me up"
    "joining": (100, 100),  # fast: talking to the router
    "discovering": (500, 500),  # slow: looking for the PC
    "linked": (),  # steady: showing live data
    "nodata": (50, 1950),  # a blip every 2 s: linked, but nothing to show
    "off": None,
}


def level_at(pattern, elapsed_ms):
    """Whether `pattern` has the LED on `elapsed_ms` after it started."""
    timings = PATTERNS[pattern]
    if timings is None:
        return False
    if not timings:
        return True
    elapsed_ms %= sum(timings)
    for i, ms in enumerate(timings):
        if elapsed_ms < ms:
            return i % 2 == 0
        elapsed_ms -= ms
    return False


def next_change(pattern, elapsed_ms):
    """Ms from `elapsed_ms` until `pattern` next switches the LED (None: never)."""
    timings = PATTERNS[pattern]
    if not timings:
        return None
    elapsed_ms %= sum(timings)
    for ms in timings:
        if elapsed_ms < ms:
            return ms - elapsed_ms
        elapsed_ms -= ms
    return timings[0]


class Led:
    """Blinks the hardware LED in the pattern of the current state."""

    def __init__(self, hw_led):
        self.hw = hw_led
        self.pattern = "off"
        self._wake = None
        hw_led.set(False)

    def show(self, pattern):
        """Switch to `pattern` (one of PATTERNS); the same pattern again changes nothing."""
        if pattern not in PATTERNS:
            raise ValueError("no LED pattern " + repr(pattern))
        if pattern == self.pattern:
            return
        self.pattern = pattern
        self.hw.show(pattern)
        if self._wake is not None:
            self._wake.set()

    async def run(self):
        """Drive the LED; sleeps until the next edge, or until the pattern changes."""
        import asyncio

        import hal

        self._wake = asyncio.Event()
        while True:
            self._wake.clear()
            pattern = self.pattern
            started = hal.ticks_ms()
            while pattern == self.pattern:
                elapsed = hal.ticks_diff(hal.ticks_ms(), started)
                self.hw.set(level_at(pattern, elapsed))
                wait = next_change(pattern, elapsed)
                try:
                    if wait is None:
                        await self._wake.wait()
                    else:
                        await asyncio.wait_for(self._wake.wait(), wait / 1000)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
