"""The real board: DAC or PWM output, button and LED pins, watchdog, Wi-Fi interfaces."""

import binascii
import os
import time

import machine
import network

DEFAULT_OUTPUT_PIN = 25  # GPIO25 is DAC1 on the classic ESP32 (GPIO26 is DAC2)
DEFAULT_PWM_PIN = 4  # exists on the S3 and C3, which have no GPIO25 and no DAC
DEFAULT_BUTTON_PIN = 0  # the BOOT button on most dev boards
DEFAULT_LED_PIN = 2
PWM_FREQ = 20000  # far above the meter's response; an RC filter turns it into a level
# The output level of an uncalibrated 100 %: docs/hardware.md sizes the sense resistor
# so that full scale is 2.5 V of the DAC's 3.3 V, leaving headroom above it.
FULL_SCALE = 2.5 / 3.3
MIN_WATCHDOG_MS = 15000  # flash writes and Wi-Fi joins may stall the loop for seconds


def board() -> str:
    """The board as MicroPython names it, e.g. "Generic ESP32 module with ESP32"."""
    return str(os.uname().machine)[:32]


def output_kind() -> str:
    """ "dac" on chips with a DAC (classic ESP32, S2), else "pwm" (S3, C3)."""
    return "dac" if hasattr(machine, "DAC") else "pwm"


class Output:
    """One meter's drive: an 8-bit DAC channel (GPIO25, GPIO26), or PWM duty on any pin
    for an RC filter (the only choice on DAC-less chips). `number` is the needle's (1..4)."""

    def __init__(
        self, pin: "int | None" = None, kind: "str | None" = None, number: int = 1
    ) -> None:
        self.kind = "pwm" if kind == "pwm" or output_kind() == "pwm" else "dac"
        self.number = number
        if pin is None:
            pin = DEFAULT_OUTPUT_PIN if self.kind == "dac" else DEFAULT_PWM_PIN
        pin_obj = machine.Pin(pin)
        self.fraction = 0.0
        if self.kind == "dac":
            self._dac = machine.DAC(pin_obj)
            self._dac.write(0)
        else:
            self._pwm = machine.PWM(pin_obj, freq=PWM_FREQ, duty_u16=0)

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
        number = DEFAULT_BUTTON_PIN if pin is None else pin
        self._pin = machine.Pin(number, machine.Pin.IN, machine.Pin.PULL_UP)

    def pressed(self) -> bool:
        """True while the button is held down (undebounced)."""
        return self._pin.value() == 0


class Led:
    """The status LED."""

    def __init__(self, pin: "int | None" = None) -> None:
        number = DEFAULT_LED_PIN if pin is None else pin
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


def watchdog(timeout_ms: int) -> "machine.WDT":
    """Start the hardware watchdog (at least 15 s); it cannot be stopped once started."""
    return machine.WDT(timeout=max(int(timeout_ms), MIN_WATCHDOG_MS))


def reset() -> None:
    """Restart the board."""
    machine.reset()


# milliseconds from an arbitrary point; compare them with ticks_diff (they wrap)
ticks_ms = time.ticks_ms
ticks_diff = time.ticks_diff


def wlan_station() -> "network.WLAN":
    """The station (client) Wi-Fi interface."""
    return network.WLAN(network.STA_IF)


def wlan_ap() -> "network.WLAN":
    """The access-point Wi-Fi interface."""
    return network.WLAN(network.AP_IF)
