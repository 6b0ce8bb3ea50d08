"""Standard streams a command can always write to: no console, any codepage.

A windowed Windows executable starts with `sys.stdout` and `sys.stderr` set to None,
and a redirected console writes in the ANSI codepage (cp1252...), which lacks
characters such as the network metric's arrows. `make_safe()` runs once, first thing
in `cli.main`, so no command has to think about either.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import sys
from typing import Literal, TextIO

# the codecs that can write every character: nothing to replace
_UNICODE = {"utf-8", "utf-16", "utf-32", "utf-8-sig"}


def _devnull(mode: Literal["r", "w"] = "w") -> TextIO:
    # text that goes nowhere, so flush(), isatty() and print() all work; it stays open
    # as long as the process, like the stream it stands in for
    return open(os.devnull, mode, encoding="utf-8")


def _forgiving(stream: TextIO) -> None:
    """Let `stream` replace what its encoding lacks instead of raising."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = encoding
    if name in _UNICODE:
        return
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(io.UnsupportedOperation, ValueError, TypeError):
            reconfigure(errors="replace")


_console = True


def has_console() -> bool:
    """False when the program started with no standard output (a windowed exe)."""
    return _console


def make_safe() -> None:
    """Replace missing standard streams with the null device; make the others forgiving."""
    global _console
    _console = sys.stdout is not None
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, _devnull())
        else:
            _forgiving(stream)
    if sys.stdin is None:
        sys.stdin = _devnull("r")
