"""`sysboy about`: version, protocol, where the settings and logs live, what cannot be read.

`--window` shows it in a small Tk window (the tray's About… runs that in a process of
its own): each path in a field the user can select and copy, a button that opens its
folder, and the full reason each unavailable metric gives, once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from functools import partial
from pathlib import Path

from sysboy_tray import PROTOCOL_VERSION, __version__
from sysboy_tray.config import Paths
from sysboy_tray.errors import ControlError
from sysboy_tray.terminal import printable_lines

TITLE = "About Sysboy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--window", action="store_true", help="show it in a small window")


def running_port(paths: Paths) -> int | None:
    """The port the running app listens on, from its state file (None: not running)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return int(json.loads(paths.state_file.read_text("utf-8"))["port"])
    return None


def unavailable(paths: Paths) -> list[tuple[str, str]]:
    """What the running app cannot read: (labels, the full reason), one line per reason."""
    from sysboy_tray.control_client import ControlClient

    if running_port(paths) is None:
        return []
    try:
        with ControlClient.find(paths, timeout=2.0) as client:
            metrics = client.status().metrics
    except ControlError:
        return []
    reasons: dict[str, list[str]] = {}
    for metric in metrics:
        if not metric.available and metric.reason:
            reasons.setdefault(metric.reason, []).append(metric.label)
    return [(", ".join(labels), reason) for reason, labels in reasons.items()]


def about_text(paths: Paths, missing: list[tuple[str, str]] | None = None) -> str:
    """What About says, as lines of text."""
    lines = [f"Sysboy {__version__}, protocol {PROTOCOL_VERSION}"]
    port = running_port(paths)
    if port is not None:
        lines.append(f"Running, listening on port {port}")
    lines.append(f"Settings: {paths.settings_file}")
    lines.append(f"Logs: {paths.log_dir}")
    for labels, reason in missing or []:
        lines.append(f"Not available: {labels}: {reason}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    paths = Paths.default()
    missing = unavailable(paths)
    # reasons come from the running app, which may quote a driver: never print them raw
    print(printable_lines(about_text(paths, missing)))
    if args.window:
        show_window(paths, missing)
    return 0


def show_window(paths: Paths, missing: list[tuple[str, str]]) -> None:
    """The About window; returns when it is closed (at once when there is no display)."""
    import tkinter as tk
    from tkinter import font, ttk

    from sysboy_tray.tray.launch import open_folder

    try:
        root = tk.Tk(className="sysboy")
    except tk.TclError:
        return  # no display: the printed text is all there is
    root.title(TITLE)
    root.resizable(False, False)
    frame = ttk.Frame(root, padding=14)
    frame.grid(sticky="nsew")
    heading = font.nametofont("TkDefaultFont").copy()
    heading.configure(weight="bold", size=heading.cget("size") + 2)
    ttk.Label(frame, text=f"Sysboy {__version__}", font=heading).grid(
        row=0, column=0, columnspan=3, sticky="w"
    )
    port = running_port(paths)
    running = f"running, listening on port {port}" if port is not None else "not running"
    ttk.Label(frame, text=f"Protocol {PROTOCOL_VERSION} · {running}").grid(
        row=1, column=0, columnspan=3, sticky="w", pady=(0, 10)
    )
    told = tk.StringVar(root, value="")

    def opener(folder: Path) -> None:
        if open_folder(folder):
            told.set("")
        else:
            sentence = f"No file manager could be started: the folder is {folder}"
            told.set(f"{sentence} (select it above to copy it).")
            print(f"{sentence}.", flush=True)

    places = (
        ("Settings", paths.settings_file, paths.config_dir),
        ("Logs", paths.log_dir, paths.log_dir),
    )
    for row, (name, shown, folder) in enumerate(places, start=2):
        ttk.Label(frame, text=f"{name}:").grid(row=row, column=0, sticky="w", padx=(0, 8))
        # a read-only field: the whole path shows, and can be selected and copied
        field = ttk.Entry(frame, width=max(40, len(str(shown)) + 2))
        field.insert(0, str(shown))
        field.configure(state="readonly")
        field.grid(row=row, column=1, sticky="ew", pady=2)
        ttk.Button(frame, text="Open folder", command=partial(opener, folder)).grid(
            row=row, column=2, padx=(8, 0), pady=2
        )
        if row == 2:
            field.focus_set()
    row = 2 + len(places)
    for labels, reason in missing:
        ttk.Label(frame, text=f"{labels} not available: {reason}", wraplength=460).grid(
            row=row, column=0, columnspan=3, sticky="w", pady=(8, 0)
        )
        row += 1
    ttk.Label(frame, textvariable=told, foreground="#b00020", wraplength=460).grid(
        row=row, column=0, columnspan=3, sticky="w", pady=(6, 0)
    )
    ttk.Button(frame, text="Close", command=root.destroy).grid(
        row=row + 1, column=2, sticky="e", pady=(10, 0)
    )
    root.bind("<Escape>", lambda event: root.destroy())
    root.mainloop()
