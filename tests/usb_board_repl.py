"""MicroPython program: the interpreter of the USB board stand-in (tests/usb_board.py).

Reads code blocks framed as `<length>\\n<bytes>` on stdin and runs each in one namespace,
as a board's raw REPL does, then writes what a board writes back: the output, \\x04, the
error, \\x04 and the `>` prompt. `machine.reset()` ends the process with status 99 (the
stand-in then boots the board again). The board's filesystem is the working folder, seen
as the ESP32's VFS sees it: "" is the current folder.
"""

import sys

import board_builtins

board_builtins.install()
namespace = {"__name__": "__main__"}
out = sys.stdout
while True:
    line = sys.stdin.buffer.readline()
    if not line:
        break
    code = sys.stdin.buffer.read(int(line))
    try:
        exec(code, namespace)
    except SystemExit as exc:
        if exc.args and exc.args[0] == "machine.reset":
            out.write("\x04\x04>")
            sys.exit(99)
        out.write("\x04\x04>")
        continue
    except BaseException as exc:  # a board reports every error the same way
        out.write("\x04")
        sys.print_exception(exc, out)
        out.write("\x04>")
        continue
    out.write("\x04\x04>")
