"""`sysboy rename DEVICE NAME`: name a device on this PC; `--window` asks for the name.

The name is kept in the PC's settings and shown by the tray and `sysboy status`; an
empty name gives the device back its own. The tray's Rename… runs this with `--window`
in a process of its own, so a Tk problem can never take the tray down.
"""

from __future__ import annotations

import argparse
import sys

from sysboy_tray.commands._client import EPILOG, with_client
from sysboy_tray.control_client import ControlClient
from sysboy_tray.errors import ControlError
from sysboy_tray.terminal import printable

TITLE = "Rename meter"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("device", metavar="DEVICE", help="the device's id or its name now")
    parser.add_argument(
        "name", nargs="?", metavar="NAME", help='the new name, up to 32 characters ("" to clear)'
    )
    parser.add_argument("--window", action="store_true", help="ask for the name in a window")


def run(args: argparse.Namespace) -> int:
    if args.name is None and not args.window:
        print("sysboy: give the new name, or --window to type it in a window", file=sys.stderr)
        return 2

    def rename(client: ControlClient) -> int:
        if args.window:
            return _ask(client, args.device, args.name)
        device_id, shown = client.rename(args.device, args.name)
        # the shown name may be the device's own, which came from the network
        print(printable(f"device {device_id} is now named {shown}"))
        return 0

    return with_client(rename)


def _ask(client: ControlClient, device: str, suggested: str | None) -> int:
    """The rename window: the name now, typed over; Rename or Enter saves it."""
    import tkinter as tk  # only here: the other commands must work without Tk
    from tkinter import ttk

    current = next((d for d in client.status().devices if device in (d.id, d.name)), None)
    device_id = current.id if current is not None else device
    try:
        root = tk.Tk(className="sysboy")
    except tk.TclError as exc:
        print(f"sysboy: cannot open a window here ({exc}); give the name instead", file=sys.stderr)
        return 1
    root.title(TITLE)
    root.resizable(False, False)
    frame = ttk.Frame(root, padding=12)
    frame.grid(sticky="nsew")
    ttk.Label(frame, text=f"Name for meter {device_id}:").grid(
        row=0, column=0, columnspan=3, sticky="w"
    )
    name = tk.StringVar(root, value=suggested if suggested is not None else "")
    if suggested is None and current is not None and current.name != current.id:
        name.set(current.name)
    entry = ttk.Entry(frame, textvariable=name, width=34)
    entry.grid(row=1, column=0, columnspan=3, sticky="ew", pady=(4, 4))
    hint = ttk.Label(frame, text="Shown in the tray and in sysboy status; empty: its own name.")
    hint.grid(row=2, column=0, columnspan=3, sticky="w")
    problem = tk.StringVar(root, value="")
    ttk.Label(frame, textvariable=problem, foreground="#b00020", wraplength=320).grid(
        row=3, column=0, columnspan=3, sticky="w"
    )

    def save(event: object = None) -> None:
        try:
            renamed, shown = client.rename(device_id, name.get())
        except ControlError as exc:
            problem.set(str(exc)[:1].upper() + str(exc)[1:] + ".")
            return
        print(printable(f"device {renamed} is now named {shown}"))
        root.destroy()

    ttk.Button(frame, text="Cancel", command=root.destroy).grid(row=4, column=1, pady=(8, 0))
    ttk.Button(frame, text="Rename", command=save, default="active").grid(
        row=4, column=2, pady=(8, 0), padx=(6, 0)
    )
    root.bind("<Return>", save)
    root.bind("<Escape>", lambda event: root.destroy())
    entry.select_range(0, "end")
    entry.focus_force()
    root.mainloop()
    return 0  # renamed, or left as it was with Cancel
