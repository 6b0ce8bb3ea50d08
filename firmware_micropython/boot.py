"""Runs first at every power-on. Kept trivial on purpose: nothing here can stop the board
from reaching the REPL, so a broken main.py can always be replaced over USB."""

import gc

gc.collect()
