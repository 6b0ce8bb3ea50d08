"""Command-line values shared by the commands that start the app: each bad one is a sentence."""

from __future__ import annotations

import argparse

from sysboy_tray.config import check_interval
from sysboy_tray.errors import ConfigError

PORT_RANGE = "give a whole number from 0 to 65535 (0: any free port)"


def port(text: str) -> int:
    """`--port`: 0 to 65535."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number: {PORT_RANGE}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number: {PORT_RANGE}")
    return value


def interval(text: str) -> float:
    """`--interval`: seconds, 0.1 to 60."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds: give one from 0.1 to 60, e.g. 2 or 0.5"
        ) from None
    try:
        return check_interval(seconds)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
