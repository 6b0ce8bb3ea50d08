"""`python -m sysboy_tray` runs the same command line as `sysboy`."""

import sys

from sysboy_tray.cli import main

sys.exit(main())
