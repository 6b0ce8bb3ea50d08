"""`sysboy metric NAME [--device ID] [--needle N]`: choose what the needles show."""

from __future__ import annotations

import argparse

from sysboy_tray.commands._client import EPILOG, with_client
from sysboy_tray.config import MAX_NEEDLES
from sysboy_tray.control_client import ControlClient


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("name", metavar="NAME", help="the metric, e.g. vram, cpu, ram")
    parser.add_argument(
        "--device", metavar="ID", help="only this device (see `sysboy status`); default: all"
    )
    parser.add_argument(
        "--needle",
        metavar="N",
        type=_needle,
        help="only this needle of the device, 1 to 4 (default: needle 1 of a named device)",
    )


def _needle(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_NEEDLES:
        raise argparse.ArgumentTypeError(f"a needle is a number from 1 to {MAX_NEEDLES}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    def choose(client: ControlClient) -> int:
        name = args.name.lower()
        client.set_metric(name, args.device, args.needle)
        if args.needle:
            where = f"device {args.device}" if args.device else "the device"
            print(f"needle {args.needle} of {where} now shows {name}")
        elif args.device:
            print(f"device {args.device} now shows {name}")
        else:
            print(f"now showing {name} (devices with a metric of their own keep it)")
        return 0

    return with_client(choose)
