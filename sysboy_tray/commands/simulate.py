"""`sysboy simulate`: a virtual Sysboy, the real firmware on this computer, in a window."""

from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from sysboy_tray.errors import SysboyError
from sysboy_tray.simulator.device import (
    RUNTIMES,
    Console,
    Metric,
    Needle,
    SimulatedDevice,
    State,
    Stopped,
    check_server,
    run_firmware_here,
)
from sysboy_tray.terminal import printable

if TYPE_CHECKING:
    from sysboy_tray.simulator.window import MeterWindow


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The device's settings and calibration are kept in the user data folder, per name. "
        "With --headless it prints lines: `device ID`, `needle FRACTION`, `state STATE`, "
        "`metric ID LABEL` (needle 2's as `needle2 FRACTION` and `metric2 ID LABEL`); the "
        "firmware's console goes to stderr."
    )
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        default="",
        help="the PC's address, set by hand (default: find it on the network as the device does)",
    )
    parser.add_argument(
        "--headless", action="store_true", help="no window: print the needle and state as text"
    )
    parser.add_argument(
        "--name",
        default="sim",
        help="which simulator (each name is its own device, with its own id and settings)",
    )
    parser.add_argument(
        "--needles",
        type=int,
        metavar="N",
        help="how many needles the meter has, 1 to 4, drawn side by side (default: as saved, 1)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="run the firmware under MicroPython or this Python (auto: MicroPython if installed)",
    )
    # the child process of the CPython runtime: the firmware itself, nothing else
    parser.add_argument("--run-firmware", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.run_firmware:
        return run_firmware_here()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        device = SimulatedDevice(args.name, args.runtime, needles=args.needles)
        server = check_server(args.server) if args.server else ""
    except SysboyError as exc:
        print(f"sysboy: {exc}", file=sys.stderr)
        return 2
    window: MeterWindow | None = None
    if not args.headless:
        try:
            window = _open_window(device)
        except SysboyError as exc:
            print(f"sysboy: {exc}", file=sys.stderr)
            return 1
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_signal)
    try:
        device.start(server)
    except SysboyError as exc:
        print(f"sysboy: {exc}", file=sys.stderr)
        return 2
    print(
        f"Simulated Sysboy {device.name!r}, device id {device.id}, firmware under "
        f"{device.runtime}; its flash: {device.folder}",
        file=sys.stderr,
        flush=True,
    )
    try:
        if window is None:
            return _headless(device, stop)
        return _windowed(window, stop)
    finally:
        device.stop()


def _open_window(device: SimulatedDevice) -> MeterWindow:
    """The window, or SysboyError when none can open here (no Tk, no display)."""
    try:
        import tkinter as tk

        from sysboy_tray.simulator.window import MeterWindow
    except ImportError as exc:
        raise SysboyError(f"cannot open a window without Tk ({exc}); try --headless") from exc
    try:
        root = tk.Tk()
    except tk.TclError as exc:
        raise SysboyError(f"cannot open a window ({exc}); try --headless") from exc
    return MeterWindow(root, device)


def _windowed(window: MeterWindow, stop: threading.Event) -> int:
    def watch() -> None:
        # Python signal handlers run between Tk events; this wakes often enough to see one
        if stop.is_set():
            window.close()
        else:
            window.root.after(100, watch)

    window.root.after(100, watch)
    window.root.mainloop()
    return window.exit_status


def _headless(device: SimulatedDevice, stop: threading.Event) -> int:
    try:
        return _print_events(device, stop)
    except BrokenPipeError:
        # the reader went away (`| head`): nothing more to say, and nowhere to say it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _print_events(device: SimulatedDevice, stop: threading.Event) -> int:
    print(f"device {device.id}", flush=True)
    while not stop.is_set():
        try:
            event = device.events.get(timeout=0.2)
        except queue.Empty:
            continue
        if isinstance(event, Needle):
            print(f"needle{_suffix(event.number)} {event.fraction:.4f}", flush=True)
        elif isinstance(event, State):
            print(f"state {event.pattern}", flush=True)
        elif isinstance(event, Metric):
            # the label comes from whatever answered as the PC
            print(f"metric{_suffix(event.number)} {event.id} {printable(event.label)}", flush=True)
        elif isinstance(event, Console):
            print(event.text, file=sys.stderr, flush=True)
        elif isinstance(event, Stopped):
            if stop.is_set():
                break  # stopped with us (Ctrl-C reaches the whole process group)
            print(f"sysboy: the firmware stopped (exit status {event.code})", file=sys.stderr)
            return 1
    return 0


def _suffix(number: int) -> str:
    """How a line names its needle: nothing for needle 1, as on a one-needle meter."""
    return "" if number == 1 else str(number)
