"""Small helpers shared by the firmware tests (plain asserts, both runtimes)."""

import os
import sys

MICROPYTHON = sys.implementation.name == "micropython"


def here(module_file):
    """The folder holding `module_file`, without os.path (MicroPython has none)."""
    if "/" not in module_file:
        return "."
    return module_file.rsplit("/", 1)[0]


def repo_root():
    """The repository root (two folders above this one)."""
    folder = here(__file__)
    return folder + "/../.."


class SkipTest(Exception):
    """Raised by a test that cannot run on this runtime."""


class raises:
    """Context manager: the block must raise `exc_type`; the exception is kept in `.value`."""

    def __init__(self, exc_type, match=None):
        self.exc_type = exc_type
        self.match = match
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            raise AssertionError(f"{self.exc_type.__name__} was not raised")
        if not issubclass(kind, self.exc_type):
            return False
        if self.match is not None and self.match not in str(value):
            raise AssertionError(f"{str(value)!r} does not mention {self.match!r}")
        self.value = value
        return True


def use_device_folder(name):
    """A fresh folder for the device's files (SYSBOY_DEVICE_DIR), on both runtimes."""
    folder = "/tmp/sysboy-" + name + "-" + "".join("%02x" % b for b in os.urandom(6))
    os.mkdir(folder)
    environ = getattr(os, "environ", None)
    if environ is not None:
        environ["SYSBOY_DEVICE_DIR"] = folder  # CPython
    else:
        os.putenv("SYSBOY_DEVICE_DIR", folder)  # MicroPython's unix port
    return folder
