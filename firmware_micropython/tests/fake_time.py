"""MicroPython's ticks on CPython, so hal.esp32 imports there too."""

import time as _time

sleep = _time.sleep


def ticks_ms():
    return int(_time.monotonic() * 1000)


def ticks_diff(later, earlier):
    return later - earlier
