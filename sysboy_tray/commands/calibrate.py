"""`sysboy calibrate [DEVICE] [--needle N]`: the needle calibration window, in its own process.

The tray starts this as a separate process so that a Tk problem can never take the
tray down; it talks to the running app through the control API.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from sysboy_tray.commands._client import EPILOG, EXIT_NOT_RUNNING, EXIT_REFUSED
from sysboy_tray.control_client import ControlClient
from sysboy_tray.errors import ControlError, NotRunning


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument(
        "device", nargs="?", metavar="DEVICE", help="the device id; may be left out with one device"
    )
    parser.add_argument(
        "--needle",
        metavar="N",
        type=int,
        default=1,
        help="the needle to start with, on a meter with several (default: 1)",
    )


def _pick(client: ControlClient, device: str | None) -> str:
    if device is not None:
        return device
    ids = [d.id for d in client.status().devices]
    if not ids:
        raise ControlError("no device is connected; plug the meter in and wait for it to link")
    if len(ids) > 1:
        raise ControlError(f"several devices are connected; name one: {', '.join(ids)}")
    return ids[0]


def run(args: argparse.Namespace) -> int:
    import tkinter as tk  # only here: the other commands must work without Tk

    from sysboy_tray.calibrate.editor import CalibrationEditor
    from sysboy_tray.calibrate.window import run_window, show_error

    client: ControlClient | None = None
    try:
        client = ControlClient.find()
        editor = CalibrationEditor.open(client, _pick(client, args.device), args.needle)
    except ControlError as exc:
        if client is not None:
            client.close()
        print(f"sysboy: {exc}", file=sys.stderr)
        with contextlib.suppress(tk.TclError):  # no display: the sentence above is all
            show_error(str(exc))
        return EXIT_NOT_RUNNING if isinstance(exc, NotRunning) else EXIT_REFUSED
    try:
        return run_window(editor)
    except tk.TclError as exc:
        print(f"sysboy: cannot open the calibration window: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        client.close()
