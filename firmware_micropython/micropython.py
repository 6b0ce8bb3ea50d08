"""CPython's stand-in for MicroPython's built-in `micropython` module, for the tests and
tools that run the firmware's pure parts on CPython. MicroPython always takes its own
built-in module before any file, and the bundle leaves this one out."""


def const(value):
    """MicroPython folds `const()` into the code when it compiles; here it is the value."""
    return value
