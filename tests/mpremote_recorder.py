"""Runs the real mpremote, first noting its command line in MPREMOTE_ARGV_LOG (one JSON
line per run): what anyone on this PC could read from the process list."""

import json
import os
import sys

from mpremote.main import main

with open(os.environ["MPREMOTE_ARGV_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
sys.argv = ["mpremote", *sys.argv[1:]]
sys.exit(main())
