"""The fake board's built-in `network` module: only the station MAC, as the ESP32 gives it."""

import os

STA_IF = 0
AP_IF = 1


class WLAN:
    def __init__(self, interface):
        self.interface = interface

    def config(self, name):
        if name != "mac":
            raise ValueError("unknown config param")
        import binascii

        return binascii.unhexlify(os.getenv("FAKE_BOARD_MAC") or "240ac4123456")
