"""What the ESP32 port has built in and the unix port lacks or does otherwise: `machine`
with reset(), and `os.stat("")` naming the current folder, as the board's VFS does."""

import sys


class _Machine:
    def reset(self):
        raise SystemExit("machine.reset")

    def soft_reset(self):
        raise SystemExit("machine.reset")


class _Os:
    pass


def install():
    import os as real

    board_os = _Os()
    for name in dir(real):
        if not name.startswith("__"):
            setattr(board_os, name, getattr(real, name))
    board_os.stat = lambda path: real.stat(path or ".")
    sys.modules["os"] = board_os
    sys.modules["machine"] = _Machine()
