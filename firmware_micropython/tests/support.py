"""Small helpers shared by the firmware tests (plain asserts, both runtimes)."""

import os
import sys

MICROPYTHON = sys.implementation.name == "micropython"


class FW:
    """Constants the firmware keeps private (MicroPython folds them into its code, so they
    cost no heap), by value: network.STAT_* as the ESP32 port numbers them, and wifi.py's
    and the simulated radio's."""

    STAT_IDLE = 1000
    STAT_CONNECTING = 1001
    STAT_GOT_IP = 1010
    STAT_BEACON_TIMEOUT = 200
    STAT_NO_AP_FOUND = 201
    STAT_WRONG_PASSWORD = 202
    STAT_ASSOC_FAIL = 203
    STAT_HANDSHAKE_TIMEOUT = 204
    REASON_4WAY_HANDSHAKE_TIMEOUT = 15
    # what wifi.py says a join came to
    JOINED = "joined"
    WRONG_PASSWORD = "wrong password"
    WRONG_OR_WEAK = "wrong password or weak signal"
    NOT_FOUND = "network not found"
    FAILED = "could not connect"
    NO_ANSWER = "no answer"
    MAX_NETWORKS = 20  # listed by the portal
    PORTAL_AFTER_REFUSALS = 3  # refusals before the portal may open
    AP_FIRST_CLIENT_MS = 1000  # the simulated phone's time to join the access point
    # DNS record types (RFC 1035, 2782, 3596)
    TYPE_A = 1
    TYPE_PTR = 12
    TYPE_TXT = 16
    TYPE_AAAA = 28
    TYPE_SRV = 33
    TYPE_ANY = 255


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


def new_characters(start, count):
    """`count` characters from U+`start` on (CJK: three UTF-8 bytes each), made without chr()
    or str iteration, which would intern them before a test begins."""
    out = bytearray()
    for cp in range(start, start + count):
        out += bytes((0xE0 | cp >> 12, 0x80 | (cp >> 6 & 0x3F), 0x80 | (cp & 0x3F)))
    return str(out, "utf-8")


def heap_kept(feed):
    """Bytes that stay in the heap after `feed(start)` is called with 5 new starts (1000
    characters apart), once the first call has loaded what the code needs anyway.

    MicroPython interns each character that iterating or indexing a str yields, for good:
    code that does so with what a peer sends lets that peer fill the heap."""
    if not MICROPYTHON:
        raise SkipTest("the interned characters are MicroPython's")
    import gc

    feed(0x4E00)
    gc.collect()
    before = gc.mem_alloc()
    for n in range(1, 6):
        feed(0x4E00 + 1000 * n)
    gc.collect()
    return gc.mem_alloc() - before


# one made-up file, app.mpy, that the update tests send
UPDATE_DATA = bytes(range(256)) * 10


class Socket:
    """A link's WebSocket as the update tests see it: what the firmware sends, and its close."""

    def __init__(self):
        self.sent = []
        self.closed = None

    async def send(self, text):
        import json

        self.sent.append(json.loads(text))

    async def close(self, code=1000, reason=""):
        self.closed = code


def update_frame(data=UPDATE_DATA):
    """A manifest of version 0.2.0: app.mpy, UPDATE_DATA's size, and `data`'s SHA-256."""
    import binascii
    import hashlib
    import json

    digest = binascii.hexlify(hashlib.sha256(data).digest()).decode()
    files = [["app.mpy", len(UPDATE_DATA), digest]]
    return json.dumps({"type": "update", "version": "0.2.0", "files": files})


def chunk_frame(offset, size):
    """The chunk of app.mpy (UPDATE_DATA) at `offset`, `size` bytes long."""
    import binascii

    import protocol

    data = binascii.b2a_base64(UPDATE_DATA[offset : offset + size]).decode().strip()
    return protocol.encode({"type": "chunk", "file": "app.mpy", "offset": offset, "data": data})
