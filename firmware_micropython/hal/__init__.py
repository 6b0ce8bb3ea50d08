"""The hardware behind one small API: the ESP32's pins and radio, or the desktop simulator.

This is the one place that picks the backend; nothing else looks at `sys.platform`.
API (same in both): FULL_SCALE, board, output_kind, output_pins, Output, Button, Led,
unique_id, device_dir, watchdog, reset, reset_cause, mem_free, ticks_ms, ticks_diff,
wlan_station, wlan_ap; and `outputs`, the needles' outputs a config names.
"""

import sys

if sys.platform == "esp32":
    from hal.esp32 import (
        FULL_SCALE,
        Button,
        Led,
        Output,
        board,
        device_dir,
        mem_free,
        output_kind,
        output_pins,
        reset,
        reset_cause,
        ticks_diff,
        ticks_ms,
        unique_id,
        watchdog,
        wlan_ap,
        wlan_station,
    )
else:
    from hal.sim import (
        FULL_SCALE,
        Button,
        Led,
        Output,
        board,
        device_dir,
        mem_free,
        output_kind,
        output_pins,
        reset,
        reset_cause,
        ticks_diff,
        ticks_ms,
        unique_id,
        watchdog,
        wlan_ap,
        wlan_station,
    )

__all__ = [
    "FULL_SCALE",
    "Button",
    "Led",
    "Output",
    "board",
    "device_dir",
    "mem_free",
    "output_kind",
    "output_pins",
    "outputs",
    "reset",
    "reset_cause",
    "ticks_diff",
    "ticks_ms",
    "unique_id",
    "watchdog",
    "wlan_ap",
    "wlan_station",
]


def outputs(settings):
    """(output, settings) of the needles the config lists; one whose pin this board lacks
    is left out (needle 1 takes the board's default output instead, so a meter always has
    a needle)."""
    found = []
    for number, one in enumerate(settings, 1):
        try:
            output = Output(one["pin"], one["output"], number)
        except (OSError, ValueError) as exc:
            print("needle %d: pin %r unusable (%r)" % (number, one["pin"], exc))
            if number > 1:
                continue
            output = Output(None, None, 1)
        found.append((output, one))
    return found
