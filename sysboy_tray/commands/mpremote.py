"""`sysboy mpremote ARGS...`: the bundled mpremote, so the packaged app can deploy firmware."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="mpremote's own arguments")


def run(args: argparse.Namespace) -> int:
    try:
        from mpremote.main import main as mpremote_main
    except ImportError:
        print("sysboy: mpremote is not installed: pip install mpremote.", file=sys.stderr)
        return 1
    sys.argv = ["mpremote", *args.rest]
    status = mpremote_main()
    return status if isinstance(status, int) else 0
