"""`sysboy metrics`: every metric, whether it can be read here (and why not), and its value."""

from __future__ import annotations

import argparse
import logging
import time

from sysboy_tray.config import Paths, SettingsStore
from sysboy_tray.metrics import GIB, Reading, build_sources, list_gpus, pick_gpu


def _wait(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("the wait must be a number of seconds") from None
    if not 0 <= seconds <= 10:
        raise argparse.ArgumentTypeError("the wait must be between 0 and 10 seconds")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=_wait,
        default=0.5,
        metavar="S",
        help="seconds to measure CPU, network and disk over (default 0.5)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also print the log")


def _line(reading: Reading, label: str) -> str:
    if reading.percent is None:
        return f"{reading.metric:<9} {label:<9} unavailable: {reading.reason}"
    detail = f"  ({reading.detail})" if reading.detail else ""
    return f"{reading.metric:<9} {label:<9} {reading.percent:5.1f} %{detail}"


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s"
    )
    settings = SettingsStore(Paths.default().settings_file).settings
    gpus = list_gpus()
    if gpus:
        shown = pick_gpu(gpus, settings.gpu)
        print("GPUs:")
        for gpu in gpus:
            mark = "  (shown)" if gpu == shown else ""
            print(f"  {gpu.index}  {gpu.name}  {gpu.total_bytes / GIB:.1f} GiB{mark}")
    else:
        print("GPUs: none found")
    # CPU, network and disk measure between two reads: building primes them
    sources = build_sources(settings)
    try:
        time.sleep(args.wait)
        print()
        for source in sources.values():
            print(_line(source.read(), source.label))
    finally:
        for source in sources.values():
            source.close()
    return 0
