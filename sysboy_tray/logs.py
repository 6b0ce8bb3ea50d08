"""Logging: a rotating file in the user log folder, and stderr for `serve`."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Any

from sysboy_tray.terminal import printable, printable_lines

LOG_FILE = "sysboy.log"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class SafeFormatter(logging.Formatter):
    """Writes control characters in messages as visible escapes, so a string from the
    network cannot move the cursor, set the clipboard or forge a line of the log."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return printable_lines(super().formatException(ei))


def setup_logging(log_dir: Path, *, to_stderr: bool, level: int = logging.INFO) -> Path | None:
    """Send log records to a rotating file (and stderr); return the file, or None if unwritable."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    path: Path | None = log_dir / LOG_FILE
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_dir / LOG_FILE, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
        )
        file_handler.setFormatter(SafeFormatter(FORMAT))
        root.addHandler(file_handler)
    except OSError as exc:
        path = None
        print(f"sysboy: cannot write the log in {log_dir}: {exc}", file=sys.stderr)
    if to_stderr and sys.stderr is not None:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    # websockets logs every refused handshake at INFO; keep those in the file only at WARNING
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return path
