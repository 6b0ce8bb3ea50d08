"""`sysboy serve`: the server, sampler and mDNS without a tray icon."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from sysboy_tray.advertise import lan_addresses
from sysboy_tray.app import App
from sysboy_tray.commands import _args
from sysboy_tray.config import Paths
from sysboy_tray.control import control_factory
from sysboy_tray.errors import CannotListen
from sysboy_tray.firewall import firewall_for
from sysboy_tray.instance import already_running, instance_lock
from sysboy_tray.logs import setup_logging
from sysboy_tray.sleep import sleep_watcher_for

log = logging.getLogger(__name__)

MDNS_WAIT_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=_args.port,
        help="port to listen on (default: from settings; only the default moves when taken)",
    )
    parser.add_argument(
        "--interval", type=_args.interval, metavar="S", help="seconds between samples (0.1 to 60)"
    )
    parser.add_argument(
        "--no-mdns", action="store_true", help="do not advertise on the network (mDNS)"
    )


def run(args: argparse.Namespace) -> int:
    paths = Paths.default()
    setup_logging(paths.log_dir, to_stderr=True)
    lock = instance_lock(paths)
    try:
        first = lock.acquire()
    except OSError as exc:
        why = exc.strerror or exc
        print(f"sysboy: cannot start: cannot write {lock.path}: {why}", file=sys.stderr)
        return 1
    if not first:
        print(already_running(paths), flush=True)
        return 0
    try:
        return _serve(args, paths)
    finally:
        lock.release()


def _serve(args: argparse.Namespace, paths: Paths) -> int:
    try:
        control = control_factory(paths)
    except OSError as exc:
        log.warning("no control API (sysboy status, calibration): cannot write its token: %s", exc)
        control = None
    app = App(
        paths,
        port=args.port,
        interval=args.interval,
        advertise=not args.no_mdns,
        control=control,
        sleep=sleep_watcher_for(),
        firewall=firewall_for(),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_signal)
    try:
        app.start()
    except (OSError, CannotListen) as exc:
        print(f"sysboy: cannot listen: {exc}", file=sys.stderr)
        return 1
    print(f"listening on ws://{lan_addresses()[0]}:{app.port}/device", flush=True)
    if app.advertiser is not None:
        app.advertise_done.wait(MDNS_WAIT_S)
        info = app.advertiser.info
        if app.advertised and info is not None:
            print(f"advertising {info.name} at {', '.join(app.advertised)} (mDNS)")
        else:
            print("not advertised (mDNS failed, see the log): devices need this PC's address")
    sys.stdout.flush()
    # Where signals interrupt a lock wait (POSIX) the main thread sleeps until one comes;
    # elsewhere (Windows) it looks once a second, which bounds how late Ctrl-C is seen.
    poll = None if hasattr(signal, "pthread_sigmask") else 1.0
    while not stop.wait(poll):
        pass
    log.info("stopping: parking needles and saying goodbye")
    app.stop()
    return 0
