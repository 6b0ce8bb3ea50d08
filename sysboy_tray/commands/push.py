"""`sysboy push NAME VALUE`: a script's own value, shown and selectable like a built-in metric."""

from __future__ import annotations

import argparse
import math
import sys

from sysboy_tray.commands._client import EPILOG, with_client
from sysboy_tray.control_client import ControlClient


def _value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("the value must be a finite number")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The value is a percent of full scale (0 to 100, clamped). It expires unless pushed "
        "again within custom_ttl_s seconds (settings, default 30). " + EPILOG
    )
    parser.add_argument("name", metavar="NAME", help="a metric name: a-z, 0-9 and _, e.g. build")
    parser.add_argument("value", metavar="VALUE", type=_value, help="percent of full scale")
    parser.add_argument("--unit", default="", metavar="U", help="its unit (at most 16 characters)")
    parser.add_argument(
        "--label", default="", metavar="L", help="its name in menus (at most 32 characters)"
    )


def run(args: argparse.Namespace) -> int:
    def push(client: ControlClient) -> int:
        ttl = client.push(args.name, args.value, args.unit, args.label)
        if sys.stdout.isatty():  # a person gets a word back; a script's log stays quiet
            print(
                f"pushed {args.name} = {args.value:g}; it expires in {ttl:g} s unless pushed again"
            )
        return 0

    return with_client(push)
