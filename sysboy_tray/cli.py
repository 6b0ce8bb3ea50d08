"""The `sysboy` command line."""

from __future__ import annotations

import argparse

from sysboy_tray import __version__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="sysboy")
    parser.add_argument("--version", action="version", version=f"sysboy {__version__}")
    parser.parse_args(argv)
    return 0
