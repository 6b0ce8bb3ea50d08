"""`sysboy push NAME VALUE`: a script's own value, shown and selectable like a built-in metric."""

from __future__ import annotations

import argparse
import math

from sysboy_tray.commands._client import EPILOG, with_client
from sysboy_tray.control_client import ControlClient, Pushed


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


def describe(pushed: Pushed, value: float) -> str:
    """One line: what the needles show now."""
    head = f"{pushed.label} ({pushed.name}) = {value:g}"
    count = len(pushed.shown_on)
    if count:
        where = f"shown on {count} needle{'s' if count > 1 else ''}: {', '.join(pushed.shown_on)}"
    elif pushed.on_tray:
        where = "shown on the tray icon, on no needle"
    else:
        where = f"no needle shows it (`sysboy metric {pushed.name}` puts it on every needle)"
    return f"{head}: {where}; it expires in {pushed.ttl_s:g} s unless pushed again"


def run(args: argparse.Namespace) -> int:
    def push(client: ControlClient) -> int:
        print(describe(client.push_value(args.name, args.value, args.unit, args.label), args.value))
        return 0

    return with_client(push)
