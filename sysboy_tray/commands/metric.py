"""`sysboy metric NAME [--device ID]`: choose what the needles show."""

from __future__ import annotations

import argparse

from sysboy_tray.commands._client import EPILOG, with_client
from sysboy_tray.control_client import ControlClient


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("name", metavar="NAME", help="the metric, e.g. vram, cpu, ram")
    parser.add_argument(
        "--device", metavar="ID", help="only this device (see `sysboy status`); default: all"
    )


def run(args: argparse.Namespace) -> int:
    def choose(client: ControlClient) -> int:
        client.set_metric(args.name, args.device)
        if args.device:
            print(f"device {args.device} now shows {args.name}")
        else:
            print(f"now showing {args.name} (devices with a metric of their own keep it)")
        return 0

    return with_client(choose)
