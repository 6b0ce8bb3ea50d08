"""A stand-in for mpremote with a board that is a folder: the boundary `firmware deploy` uses.

It takes mpremote's own command line (commands chained with `+`) and acts on the folder in
FAKE_BOARD_DIR as a board's flash would be acted on: `exec` and `run` execute their code on
the real MicroPython unix port with the flash as the working folder (so the deployed .mpy
files are what runs), `fs cp` copies files onto it, `reset` restarts the board: it boots
the firmware on the flash far enough to see whether it would start its watchdog. The
board's built-in `network` module is tests/fake_board/network.py (MAC from FAKE_BOARD_MAC).
Every command line and every reset is appended to FAKE_BOARD_JOURNAL as one JSON line.
FAKE_BOARD_FAIL=cp makes every copy fail as a pulled cable would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

FLASH = Path(os.environ["FAKE_BOARD_DIR"])
# what the ESP32 port has built in and the unix port lacks (network), after the flash
BUILTINS = Path(__file__).parent / "fake_board"
JOURNAL = Path(os.environ["FAKE_BOARD_JOURNAL"])
MICROPYTHON = os.environ["FAKE_BOARD_MICROPYTHON"]
# What the board's boot does with its watchdog: hal.watchdog as the firmware calls it.
BOOT = "import hal\nprint('watchdog', 'off' if hal.watchdog(20000).timeout_ms is None else 'on')\n"


def note(entry: dict[str, object]) -> None:
    with JOURNAL.open("a", encoding="utf-8") as journal:
        journal.write(json.dumps(entry) + "\n")


def on_board(code: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SYSBOY_DEVICE_DIR": str(FLASH),
        "MICROPYPATH": f"{FLASH}{os.pathsep}{BUILTINS}",
    }
    return subprocess.run(
        [MICROPYTHON, "-c", code],
        cwd=FLASH,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def execute(code: str) -> int:
    done = on_board(code)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.stdout.write(done.stderr)
        return 1
    return 0


def copy(args: list[str]) -> int:
    *sources, target = args
    if os.environ.get("FAKE_BOARD_FAIL") == "cp":
        print("mpremote: could not enter raw repl")
        return 1
    destination = FLASH / target.removeprefix(":")
    for source in sources:
        print(f"cp {source} {target}")
        to = destination / Path(source).name if target.endswith(("/", ":")) else destination
        shutil.copyfile(source, to)
    return 0


def reset() -> int:
    flag = (FLASH / "nowatchdog").exists()
    watchdog = None
    if (FLASH / "hal").is_dir():
        done = on_board(BOOT)
        watchdog = done.stdout.split()[-1] if done.returncode == 0 else "boot failed"
    note({"reset": {"flag": flag, "watchdog": watchdog}})
    return 0


def commands(argv: list[str]) -> list[list[str]]:
    """mpremote's command line as commands: `+` separates them, but is optional after
    commands of fixed length (`connect PORT exec CODE` is two)."""
    out: list[list[str]] = []
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "+":
            continue
        if word in ("connect", "run"):
            out.append([word, rest.pop(0)])
        elif word == "exec":
            while rest[0].startswith("--"):
                rest.pop(0)
            out.append([word, rest.pop(0)])
        elif word == "fs":
            end = rest.index("+") if "+" in rest else len(rest)
            out.append([word, *rest[:end]])
            del rest[:end]
        else:
            out.append([word])
    return out


def main(argv: list[str]) -> int:
    note({"argv": argv})
    if argv == ["connect", "list"]:
        return 0  # no serial ports on this machine
    for command in commands(argv):
        name, args = command[0], command[1:]
        if name == "connect":
            if not Path(args[0]).exists():
                print(f"mpremote: failed to access {args[0]}")
                return 1
            status = 0
        elif name == "exec":
            status = execute(args[0])
        elif name == "run":
            status = execute(Path(args[0]).read_text())
        elif command[:2] == ["fs", "cp"]:
            status = copy(command[2:])
        elif name == "reset":
            status = reset()
        else:
            print(f"mpremote: unknown command {name}")
            status = 1
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
