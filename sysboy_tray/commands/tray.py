"""`sysboy` with no command: the tray app (server, sampler, mDNS and a tray icon)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from sysboy_tray import desktop, streams
from sysboy_tray.app import App
from sysboy_tray.autostart import autostart_for
from sysboy_tray.commands import _args
from sysboy_tray.config import Paths, atomic_write
from sysboy_tray.control import control_factory
from sysboy_tray.control_client import ControlClient
from sysboy_tray.errors import CannotListen, ControlError, TrayUnavailable
from sysboy_tray.firewall import firewall_for
from sysboy_tray.instance import already_running, instance_lock, running_state
from sysboy_tray.logs import setup_logging
from sysboy_tray.sleep import sleep_watcher_for

log = logging.getLogger(__name__)

QUIT_GRACE_S = 1.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=_args.port,
        help="port to listen on (default: from settings; only the default moves when taken)",
    )


ALREADY_RUNNING = (
    "Sysboy is already running: look for its gauge icon in the notification area "
    "(on Windows 11 perhaps behind the ^ arrow)."
)
WHERE_THE_ICON_IS = (
    "Sysboy is running. Its gauge icon lives in the notification area; on Windows 11 new "
    "icons wait behind the ^ arrow: drag it onto the taskbar to keep it in sight. "
    "Click it for the menu."
)
# in the data folder once the first-run notification was shown
SHOWN_MARKER = "icon-shown"


def _say(text: str) -> None:
    """Tell the user: on stderr, and in a message box when there is no console to read."""
    print(text, file=sys.stderr)
    if not streams.has_console():
        desktop.message_box("Sysboy", text, warning=True)


def _show_running() -> bool:
    """Ask the running Sysboy to point at its icon; False when it cannot be reached."""
    try:
        with ControlClient.find(timeout=3.0) as client:
            client.request("show")
    except ControlError as exc:
        log.info("cannot reach the running Sysboy: %s", exc)
        return False
    return True


def _first_run(paths: Paths) -> bool:
    """True the first time the tray starts for this user (and never again)."""
    marker = paths.data_dir / SHOWN_MARKER
    if marker.exists():
        return False
    try:
        atomic_write(marker, b"")
    except OSError as exc:
        log.warning("cannot write %s: %s", marker, exc)
    return True


def run(args: argparse.Namespace) -> int:
    from sysboy_tray.tray.backend import load_tray
    from sysboy_tray.tray.icon import TrayIcon
    from sysboy_tray.tray.launch import run_subcommand
    from sysboy_tray.tray.menu import TrayMenu

    paths = Paths.default()
    setup_logging(paths.log_dir, to_stderr=False)
    lock = instance_lock(paths)
    try:
        first = lock.acquire()
    except OSError as exc:
        _say(f"sysboy: cannot start: cannot write {lock.path}: {exc.strerror or exc}")
        return 1
    if not first:
        if running_state(paths).get("kind") == "serve":
            message = already_running(paths)  # no icon to point at
        else:
            _show_running()
            message = ALREADY_RUNNING
        print(message)
        if not streams.has_console():  # double-clicked: a box, or the user sees nothing
            desktop.message_box("Sysboy", message)
        return 0
    # Signals are caught from the start: one that comes while the app starts up is
    # acted on as soon as there is something to stop.
    quit_requested = threading.Event()
    quit_action: list[Callable[[], None]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        quit_requested.set()
        for action in quit_action:
            threading.Thread(target=action, name="sysboy-quit", daemon=True).start()

    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            toolkit = load_tray()
        except TrayUnavailable as exc:
            _say(f"sysboy: {exc}")
            return 1
        try:
            app = App(
                paths,
                port=args.port,
                control=control_factory(paths),
                sleep=sleep_watcher_for(),
                firewall=firewall_for(),
                kind="tray",
            )
            app.start()
        except (OSError, CannotListen) as exc:
            log.error("cannot listen: %s", exc)
            _say(f"sysboy: cannot listen for devices: {exc}")
            return 1
        quitting = threading.Event()

        def quit_app() -> None:
            if quitting.is_set():
                return
            quitting.set()
            log.info("quitting: parking needles and saying goodbye")
            app.stop()
            icon.stop()
            # The needles are parked and the goodbye said; should the tray toolkit's
            # loop fail to return (seen now and then with plain X11), leave anyway.
            leave = threading.Timer(QUIT_GRACE_S, _leave_now)
            leave.daemon = True  # a normal exit must not wait for it
            leave.start()

        autostart = autostart_for()
        autostart.refresh()  # an update unpacked elsewhere: login must start this copy
        menu = TrayMenu(
            app,
            toolkit,
            autostart,
            open_calibration=lambda device, needle=None: run_subcommand(
                "calibrate",
                *([device] if device else []),
                *(["--needle", str(needle)] if needle else []),
            ),
            open_folder=lambda: open_log_folder(paths, app.notice),
            show_about=lambda: run_subcommand("about", "--window"),
            quit=quit_app,
            rename=lambda device: run_subcommand("rename", device, "--window"),
        )
        icon = TrayIcon(app, toolkit, menu)
        if _first_run(paths):
            icon.tell(WHERE_THE_ICON_IS)
        quit_action.append(quit_app)
        if quit_requested.is_set():
            app.stop()
            return 0
        log.info("tray running; listening on port %d", app.port)
        try:
            icon.run()
        except TrayUnavailable as exc:
            _say(f"sysboy: {exc}")
            return 1
        finally:
            app.stop()  # the needles park, whichever way the icon ended
        return 0
    finally:
        lock.release()


def open_log_folder(paths: Paths, notice: Callable[[str], None]) -> None:
    """Show the log folder; with no file manager to show it, say where it is."""
    from sysboy_tray.tray.launch import open_folder, run_subcommand

    if open_folder(paths.log_dir):
        return
    notice(f"No file manager could be started; the logs are in {paths.log_dir}")
    # a notification may not show (plain X11 has none): About shows the path to copy
    run_subcommand("about", "--window")


def _leave_now() -> None:
    log.warning("the tray did not close in %.0f s; leaving without it", QUIT_GRACE_S)
    logging.shutdown()
    os._exit(0)
