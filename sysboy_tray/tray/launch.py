"""Starting things from the tray: our own subcommands as processes, and the file manager."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from sysboy_tray.autostart import start_command

log = logging.getLogger(__name__)


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    # the windowed tray has no streams to hand down; a child must not inherit dead ones
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_subcommand(*args: str) -> subprocess.Popen[bytes] | None:
    """Start `sysboy ARGS...` as its own process (the frozen exe or this Python).

    A separate process keeps a Tk problem in a window from ever taking the tray down.
    """
    command = [*start_command(windowed=True), *args]
    try:
        return _start(command)
    except OSError as exc:
        log.error("cannot start %s: %s", command, exc)
        return None


def open_folder(path: Path) -> bool:
    """Show a folder in the desktop's file manager; False when none could be started."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if sys.platform == "win32":
            os.startfile(path)  # type: ignore[attr-defined,unused-ignore]
        else:
            opener = "open" if sys.platform == "darwin" else "xdg-open"
            _start([opener, str(path)])
    except OSError as exc:
        log.error("cannot open %s: %s", path, exc)
        return False
    return True
