"""The real board: DAC or PWM output, button and LED pins, watchdog, Wi-Fi interfaces."""

import binascii
import gc
import os
import sys
import time

import esp32
import machine
import network
from micropython import const

# Per chip: (output pins for needles 1 and 2, BOOT button pin, LED pin). The classic ESP32
# has its DAC on GPIO25/26, the S2 on GPIO17/18; the S3, C3 and C6 have no DAC and use PWM.
# LEDs differ per dev board (docs/hardware.md); these are the common plain-LED pins.
CHIPS = {
    "ESP32": ((25, 26), 0, 2),
    "ESP32S2": ((17, 18), 0, 15),
    "ESP32S3": ((4, 5), 0, 21),
    "ESP32C3": ((4, 5), 9, 8),
    "ESP32C6": ((4, 5), 9, 15),
}
_NO_WATCHDOG_FLAG = const("nowatchdog")  # written by `sysboy firmware deploy` while it copies
_MALLOC_CAP_DEFAULT = const(0x1000)  # the ESP-IDF heap the MicroPython heap grows into
RESET_CAUSES = {1: "power on", 2: "hard reset", 3: "watchdog", 4: "deep sleep", 5: "soft reset"}
_PWM_FREQ = const(20000)  # far above the meter's response; an RC filter turns it into a level
# The output level of an uncalibrated 100 %: docs/hardware.md sizes the sense resistor
# so that full scale is 2.5 V of the DAC's 3.3 V, leaving headroom above it.
FULL_SCALE = 2.5 / 3.3
_MIN_WATCHDOG_MS = const(15000)  # flash writes and Wi-Fi joins may stall the loop for seconds


def board() -> str:
    """The board as MicroPython names it, e.g. "Generic ESP32 module with ESP32"."""
    return str(os.uname().machine)[:32]


def chip() -> str:
    """The chip, e.g. "ESP32S2", from the board's name ("... with ESP32S2")."""
    return str(os.uname().machine).rsplit(" ", 1)[-1].upper().replace("-", "")


def _defaults() -> "tuple[tuple[int, int], int, int]":
    found = CHIPS.get(chip())
    if found is None:  # a chip not listed: guess from what it has
        return CHIPS["ESP32"] if hasattr(machine, "DAC") else CHIPS["ESP32S3"]
    return found


def output_kind() -> str:
    """ "dac" on chips with a DAC (classic ESP32, S2), else "pwm" (S3, C3, C6)."""
    return "dac" if hasattr(machine, "DAC") else "pwm"


def output_pins() -> "tuple[int, int]":
    """This chip's default output pins for needles 1 and 2."""
    return _defaults()[0]


class Output:
    """One meter's drive: an 8-bit DAC channel (GPIO25, GPIO26), or PWM duty on any pin
    for an RC filter (the only choice on DAC-less chips). `number` is the needle's (1..4).
    A pin the chip lacks (or, for a DAC, one without a DAC) raises ValueError."""

    def __init__(
        self, pin: "int | None" = None, kind: "str | None" = None, number: int = 1
    ) -> None:
        self.kind = "pwm" if kind == "pwm" or output_kind() == "pwm" else "dac"
        self.number = number
        if pin is None:  # the chip's own pin for needle 1 (or 2)
            pin = output_pins()[1 if number == 2 else 0]
        pin_obj = machine.Pin(pin)
        self.fraction = 0.0
        if self.kind == "dac":
            self._dac = machine.DAC(pin_obj)
            self._dac.write(0)
        else:
            self._pwm = machine.PWM(pin_obj, freq=_PWM_FREQ, duty_u16=0)

    def write(self, fraction: float) -> None:
        """Drive the output to `fraction` of full scale (clamped to 0..1)."""
        fraction = 0.0 if fraction <= 0.0 else (1.0 if fraction >= 1.0 else fraction)
        self.fraction = fraction
        if self.kind == "dac":
            self._dac.write(int(fraction * 255 + 0.5))
        else:
            self._pwm.duty_u16(int(fraction * 65535 + 0.5))


class Button:
    """A push button to ground, with the internal pull-up."""

    def __init__(self, pin: "int | None" = None) -> None:
        number = _defaults()[1] if pin is None else pin
        self._pin = machine.Pin(number, machine.Pin.IN, machine.Pin.PULL_UP)

    def pressed(self) -> bool:
        """True while the button is held down (undebounced)."""
        return self._pin.value() == 0


class Led:
    """The status LED."""

    def __init__(self, pin: "int | None" = None) -> None:
        number = _defaults()[2] if pin is None else pin
        self._pin = machine.Pin(number, machine.Pin.OUT)
        self.pattern = ""

    def set(self, on: bool) -> None:
        """Light the LED or switch it off."""
        self._pin.value(1 if on else 0)

    def show(self, pattern: str) -> None:
        """Note the pattern now blinking (the simulator prints it; the board has no use for it)."""
        self.pattern = pattern


def unique_id() -> str:
    """This board's id: its station MAC address in hex."""
    mac = network.WLAN(network.STA_IF).config("mac")
    return binascii.hexlify(mac).decode()


def device_dir() -> str:
    """The flash filesystem's root."""
    return "/"


class _NoWatchdog:
    """Stands in for the watchdog while a deploy is copying files."""

    def feed(self) -> None:
        pass


def watchdog(timeout_ms: int) -> "machine.WDT | _NoWatchdog":
    """Start the hardware watchdog (at least 15 s); it cannot be stopped once started.

    Not while the deploy flag file exists: mpremote's soft reset cannot stop a running
    watchdog, which would reset the board in the middle of the copy.
    """
    started = getattr(sys.modules.get("slots"), "watchdog", None)
    if started is not None:
        return started  # started by the launcher for a version on trial (pointer.py)
    try:
        os.stat(device_dir() + _NO_WATCHDOG_FLAG)
    except OSError:
        return machine.WDT(timeout=max(int(timeout_ms), _MIN_WATCHDOG_MS))
    print("watchdog off: a firmware deploy is under way (file %s)" % _NO_WATCHDOG_FLAG)
    return _NoWatchdog()


def reset() -> None:
    """Restart the board."""
    machine.reset()


def reset_cause() -> str:
    """Why the board last started, in words ("power on", "watchdog", ...)."""
    cause = machine.reset_cause()
    return RESET_CAUSES.get(cause, "cause %d" % cause)


def mem_free() -> int:
    """Bytes free in the MicroPython heap, after a collection.

    Since MicroPython 1.21 the heap grows into ESP-IDF's heap on demand, and gc.mem_free()
    adds the largest block it could grow by; that room is shared with Wi-Fi and lwIP, so
    it is taken off again (idf_heap_info gives the same figure the port adds).
    """
    gc.collect()
    free = gc.mem_free()
    if sys.implementation.version < (1, 21, 0):
        return free
    return heap_free(free, esp32.idf_heap_info(_MALLOC_CAP_DEFAULT))


def heap_free(mem_free: int, regions: "list[tuple]") -> int:
    """gc.mem_free() less the largest free ESP-IDF block, which the port adds to it."""
    growth = 0
    for region in regions:
        growth = max(growth, region[2])
    return max(0, mem_free - growth)


# milliseconds from an arbitrary point; compare them with ticks_diff (they wrap)
ticks_ms = time.ticks_ms
ticks_diff = time.ticks_diff


def wlan_station() -> "network.WLAN":
    """The station (client) Wi-Fi interface."""
    return network.WLAN(network.STA_IF)


def wlan_ap() -> "network.WLAN":
    """The access-point Wi-Fi interface."""
    return network.WLAN(network.AP_IF)
