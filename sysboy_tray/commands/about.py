"""`sysboy about`: version, protocol, and where the settings and logs live."""

from __future__ import annotations

import argparse
import contextlib
import json

from sysboy_tray import PROTOCOL_VERSION, __version__
from sysboy_tray.config import Paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--window", action="store_true", help="show it in a small window")


def about_text(paths: Paths) -> str:
    """What the About box says."""
    lines = [f"Sysboy {__version__}, protocol {PROTOCOL_VERSION}"]
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        state = json.loads(paths.state_file.read_text("utf-8"))
        lines.append(f"Running, listening on port {int(state['port'])}")
    lines.append(f"Settings: {paths.settings_file}")
    lines.append(f"Logs: {paths.log_dir}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    text = about_text(Paths.default())
    print(text)
    if args.window:
        import tkinter as tk
        from tkinter import messagebox

        try:
            root = tk.Tk()
        except tk.TclError:
            return 0  # no display: the printed text is all there is
        root.withdraw()
        messagebox.showinfo("About Sysboy", text, parent=root)
        root.destroy()
    return 0
