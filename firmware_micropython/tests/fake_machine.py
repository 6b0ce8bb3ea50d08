"""A faithful stand-in for the ESP32 port's `machine` module, one chip at a time.

Pins the chip lacks raise ValueError("invalid pin") as the port does; `DAC` exists only
on the chips that have one, and only on their DAC pins.
"""

PINS = {
    "ESP32": [p for p in range(40) if p not in (20, 24, 28, 29, 30, 31)],
    "ESP32S2": list(range(22)) + list(range(26, 47)),
    "ESP32S3": list(range(22)) + list(range(26, 49)),
    "ESP32C3": list(range(22)),
    "ESP32C6": list(range(31)),
}
DAC_PINS = {"ESP32": (25, 26), "ESP32S2": (17, 18)}
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5

chip = "ESP32"
cause = PWRON_RESET
watchdogs = []  # every WDT started


def use(name, reset_cause=PWRON_RESET):
    """Become chip `name` ("ESP32", "ESP32S2", ...)."""
    global chip, cause
    chip = name
    cause = reset_cause
    del watchdogs[:]
    if name in DAC_PINS:
        globals()["DAC"] = _DAC
    else:
        globals().pop("DAC", None)


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2

    def __init__(self, number, mode=-1, pull=-1):
        if number not in PINS[chip]:
            raise ValueError("invalid pin")
        self.number = number
        self.mode = mode
        self.level = 1 if pull == Pin.PULL_UP else 0

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = level
        return None


class _DAC:
    def __init__(self, pin):
        if pin.number not in DAC_PINS[chip]:
            raise ValueError("invalid Pin for DAC")
        self.pin = pin
        self.level = None

    def write(self, level):
        self.level = level


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin = pin
        self.freq = freq
        self.duty = duty_u16

    def duty_u16(self, duty):
        self.duty = duty


class WDT:
    def __init__(self, timeout=5000):
        self.timeout = timeout
        watchdogs.append(self)

    def feed(self):
        pass


def reset_cause():
    return cause


def reset():
    raise SystemExit("machine.reset")


use("ESP32")
