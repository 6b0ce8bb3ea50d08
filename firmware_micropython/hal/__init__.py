"""The hardware behind one small API: the ESP32's pins and radio, or the desktop simulator.

This is the one place that picks the backend; nothing else looks at `sys.platform`.
API (same in both): FULL_SCALE, board, output_kind, output_pins, Output, Button, Led,
unique_id, device_dir, watchdog, reset, reset_cause, mem_free, ticks_ms, ticks_diff,
wlan_station, wlan_ap.
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
    "reset",
    "reset_cause",
    "ticks_diff",
    "ticks_ms",
    "unique_id",
    "watchdog",
    "wlan_ap",
    "wlan_station",
]
