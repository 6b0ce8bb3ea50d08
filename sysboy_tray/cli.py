"""The `sysboy` command line: one table of subcommands, each imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Protocol

from sysboy_tray import __version__, desktop, streams

# name -> (module in sysboy_tray.commands, one-line help). Each module has
# `add_arguments(parser)` and `run(args) -> int`. With no subcommand: the tray app.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run headless: WebSocket server, sampler and mDNS, no tray icon"),
    "metrics": ("metrics", "list every metric, whether it is available, and its value"),
    "firmware": ("firmware", "build the device firmware or copy it to a board"),
    "status": ("status", "what the running app does: where it listens, devices, metrics"),
    "metric": ("metric", "choose the metric the needles show (all, or one device)"),
    "push": ("push", "show a script's own value, like a built-in metric"),
    "calibrate": ("calibrate", "open the needle calibration window for a device"),
    "gpu": ("gpu", "list the GPUs, or choose the one the GPU metrics read"),
    "rename": ("rename", "name a device on this PC (the tray and status show the name)"),
    "simulate": ("simulate", "a virtual meter: the real device firmware, in a window"),
    "tray": ("tray", "the tray app (what `sysboy` runs with no command)"),
    "about": ("about", "version, protocol, and where settings and logs are"),
    "mpremote": ("mpremote", "the bundled mpremote (used by `firmware deploy`)"),
}
DEFAULT_COMMAND = "tray"


class Command(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _load(module: str) -> Command:
    command: Command = importlib.import_module(f"sysboy_tray.commands.{module}")
    return command


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="sysboy", description="Sysboy2000: live PC data on an analog meter."
    )
    parser.add_argument("--version", action="version", version=f"sysboy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(module).add_arguments(sub_parser)
            sub_parser.set_defaults(module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    # before anything prints: a windowed exe has no streams, a redirected one a codepage
    streams.make_safe()
    desktop.make_dpi_aware()  # before any window or tray icon exists
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(args_list).parse_args(args_list)
    module = getattr(args, "module", None)
    if module is None:
        # no subcommand: the tray app, with its defaults
        command = _load(DEFAULT_COMMAND)
        parser = argparse.ArgumentParser(prog="sysboy")
        command.add_arguments(parser)
        args = parser.parse_args([])
    else:
        command = _load(module)
    try:
        return command.run(args)
    except KeyboardInterrupt:
        return 130
