"""Runs the device (after boot.py). On a desktop: `micropython firmware_micropython/main.py`."""

import app

app.run()
