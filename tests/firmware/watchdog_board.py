"""The simulated board with the ESP32's watchdog: `machine.WDT` that resets an unfed board.

Run by the MicroPython unix port in place of the firmware's main.py (SYSBOY_SIM_MAIN names
it): the unix port's `machine` gains `WDT`, then main.py runs as the board runs it. As on
the ESP32 there is one watchdog: `WDT(timeout=...)` again sets its timeout, and once
started nothing stops it. Not fed for the timeout, it resets the board the hard way (the
process is killed, nothing runs after); the test driver (device_sim.py) starts it again.
SYSBOY_SIM_WDT_MS, when set, replaces every timeout asked for (a shortened test).
"""

import _thread
import os
import sys
import time

import machine as unix_machine

_state = {"timeout": 0, "fed": 0, "running": False}


class WDT:
    """The board's one watchdog."""

    def __init__(self, id=0, timeout=5000):
        shortened = os.getenv("SYSBOY_SIM_WDT_MS")
        _state["timeout"] = int(shortened) if shortened else timeout
        _state["fed"] = time.ticks_ms()
        if not _state["running"]:
            _state["running"] = True
            print(f"watchdog: started, {_state['timeout']} ms")
            _thread.start_new_thread(_watch, ())

    def feed(self):
        _state["fed"] = time.ticks_ms()


def _watch():
    while True:
        time.sleep_ms(50)
        late = time.ticks_diff(time.ticks_ms(), _state["fed"])
        if late > _state["timeout"]:
            print(f"watchdog: not fed for {late} ms: reset")
            os.system("kill -9 $PPID")  # the shell's parent: this board's interpreter


class _Machine:
    pass


board = _Machine()
for name in dir(unix_machine):
    if not name.startswith("__"):
        setattr(board, name, getattr(unix_machine, name))
board.WDT = WDT
sys.modules["machine"] = board

main = os.getenv("SYSBOY_SIM_MAIN")
sys.path[0] = main.rpartition("/")[0]  # the firmware's folder, not this one
with open(main) as f:
    code = f.read()
exec(code, {"__name__": "__main__"})
