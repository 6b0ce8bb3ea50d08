"""What the commands that talk to the running app share: connecting, errors, exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable

from sysboy_tray.control_client import ControlClient
from sysboy_tray.errors import ControlError, NotRunning
from sysboy_tray.terminal import printable

EXIT_REFUSED = 1  # the app refused or failed the request (the message says why)
EXIT_NOT_RUNNING = 3  # no running app to talk to (2 is argparse's bad usage)
EPILOG = "exit status: 0 done, 1 refused by Sysboy, 2 bad usage, 3 Sysboy is not running"


def with_client(action: Callable[[ControlClient], int]) -> int:
    """Connect to the running app, run `action`, and turn errors into a sentence and a status."""
    try:
        with ControlClient.find() as client:
            return action(client)
    except NotRunning as exc:
        print(f"sysboy: {printable(str(exc))}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except ControlError as exc:
        # the app's sentence may quote what a device sent
        print(f"sysboy: {printable(str(exc))}", file=sys.stderr)
        return EXIT_REFUSED
