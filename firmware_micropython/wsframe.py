"""Pure RFC 6455 frame codec for the device's WebSocket client: no sockets, no asyncio."""

import struct

import utf8
from micropython import const

_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BINARY = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)
_OPCODES = const((0, 1, 2, 8, 9, 10))  # continuation, text, binary, close, ping, pong

_MAX_PAYLOAD = const(4096)
_MAX_HEADER = const(14)

_CLOSE_NORMAL = const(1000)
_CLOSE_GOING_AWAY = const(1001)
_CLOSE_PROTOCOL_ERROR = const(1002)
_CLOSE_UNSUPPORTED = const(1003)
_CLOSE_NO_STATUS = const(1005)
_CLOSE_ABNORMAL = const(1006)
_CLOSE_BAD_DATA = const(1007)
_CLOSE_TOO_BIG = const(1009)


class WSError(ValueError):
    """A WebSocket protocol violation; `code` is the close code that answers it."""

    def __init__(self, message, code=_CLOSE_PROTOCOL_ERROR):
        super().__init__(message)
        self.code = code


def _mask_in(buf, at, mask_key):
    """XOR `buf` from `at` on with the 4-byte `mask_key`, in place (RFC 6455 section 5.3):
    a copy of the payload (a slice, a big integer) would need a free block of its size,
    which a small heap, fragmented after discovery, may not have."""
    for i in range(len(buf) - at):
        buf[at + i] ^= mask_key[i & 3]


def encode_frame(opcode, payload, mask_key, fin=True):
    """One frame; `mask_key` is 4 bytes (a client always masks) or None for a server frame."""
    n = len(payload)
    if n > _MAX_PAYLOAD:
        raise WSError("frame payload over 4096 bytes", _CLOSE_TOO_BIG)
    first = (0x80 if fin else 0) | opcode
    bit = 0x80 if mask_key is not None else 0
    if n < 126:
        header = struct.pack("!BB", first, bit | n)
    else:
        header = struct.pack("!BBH", first, bit | 126, n)
    if mask_key is None:
        return header + bytes(payload)
    if len(mask_key) != 4:
        raise ValueError("a mask key is 4 bytes")
    # one buffer for the whole frame, masked in place
    at = len(header) + 4
    frame = bytearray(at + n)
    frame[: at - 4] = header
    frame[at - 4 : at] = mask_key
    frame[at:] = payload
    _mask_in(frame, at, mask_key)
    return frame


def read_header(buf, start=0, end=-1):
    """Read the frame header at `start`: None if incomplete, else
    (fin, opcode, mask_at or -1, payload_at, payload_len). Raises WSError."""
    if end < 0:
        end = len(buf)
    if end - start < 2:
        return None
    first = buf[start]
    second = buf[start + 1]
    if first & 0x70:
        raise WSError("reserved bits set (no extension was agreed)")
    opcode = first & 0x0F
    if opcode not in _OPCODES:
        raise WSError("unknown opcode " + str(opcode))
    fin = bool(first & 0x80)
    length = second & 0x7F
    pos = start + 2
    if opcode >= _OP_CLOSE and (not fin or length > 125):
        raise WSError("control frame fragmented or over 125 bytes")
    if length == 126:
        if end - pos < 2:
            return None
        length = (buf[pos] << 8) | buf[pos + 1]
        pos += 2
    elif length == 127:
        if end - pos < 8:
            return None
        length = int.from_bytes(bytes(buf[pos : pos + 8]), "big")
        pos += 8
    # Refused from the header alone: a huge frame is never buffered.
    if length > _MAX_PAYLOAD:
        raise WSError("frame over 4096 bytes", _CLOSE_TOO_BIG)
    mask_at = -1
    if second & 0x80:
        mask_at = pos
        pos += 4
    if end - pos < length:
        return None
    return fin, opcode, mask_at, pos, length


def parse_frame(buf, start=0, end=-1):
    """Read one frame: None if incomplete, else (fin, opcode, payload bytes, consumed).

    A masked frame is unmasked. Raises WSError for protocol violations.
    """
    header = read_header(buf, start, end)
    if header is None:
        return None
    fin, opcode, mask_at, at, length = header
    payload = bytearray(buf[at : at + length])
    if mask_at >= 0:
        _mask_in(payload, 0, buf[mask_at : mask_at + 4])
    return fin, opcode, bytes(payload), at + length - start


class FrameParser:
    """Frames from a byte stream, in one fixed buffer: no allocation per frame but the slice.

    The client fills `space()` (e.g. with readinto), calls `filled(n)`, then takes
    frames with `next()`. Masked frames are refused: a server never masks.
    """

    def __init__(self, size=_MAX_PAYLOAD + _MAX_HEADER, buf=None):
        """`buf`: a bytearray to use (one taken early, while the heap is in one piece)."""
        self.buf = bytearray(size) if buf is None else buf
        self.view = memoryview(self.buf)
        self.start = 0
        self.end = 0

    def space(self):
        """The free part of the buffer, as a memoryview to read into."""
        if self.start == self.end:
            self.start = self.end = 0
        elif self.end == len(self.buf):
            # Move the partial frame to the front; it always fits with room to spare. Through
            # the view: a slice of the bytearray itself would copy it first (up to 4 KiB of
            # heap in one piece, every few frames)
            pending = self.end - self.start
            self.view[:pending] = self.view[self.start : self.end]
            self.start, self.end = 0, pending
        return self.view[self.end :]

    def filled(self, n):
        """`n` more bytes were written into `space()`."""
        self.end += n

    def feed(self, data):
        """Append `data` (tests and simple callers); it must fit."""
        space = self.space()
        if len(data) > len(space):
            raise WSError("too much data buffered", _CLOSE_TOO_BIG)
        space[: len(data)] = data
        self.filled(len(data))

    def next(self):
        """The next whole frame as (fin, opcode, payload memoryview), or None.

        The payload view is only valid until the next call to `space()` or `feed()`.
        """
        header = read_header(self.buf, self.start, self.end)
        if header is None:
            return None
        fin, opcode, mask_at, at, length = header
        if mask_at >= 0:
            raise WSError("masked frame from the server")
        self.start = at + length
        return fin, opcode, self.view[at : at + length]


def close_payload(code=_CLOSE_NORMAL, reason=""):
    """The payload of a close frame: the code, then at most 123 bytes of UTF-8 reason."""
    raw = reason.encode("utf-8")
    cut = min(len(raw), 123)
    # never cut inside a character: a peer answers a broken reason with 1007
    while cut < len(raw) and raw[cut] & 0xC0 == 0x80:
        cut -= 1
    return struct.pack("!H", code) + raw[:cut]


def _valid_close_code(code):
    return (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999) and code != 1004


def parse_close(payload):
    """(code, reason) from a close frame's payload; an empty payload is (1005, "")."""
    if not payload:
        return _CLOSE_NO_STATUS, ""
    if len(payload) == 1:
        raise WSError("close frame with a 1-byte payload")
    code = (payload[0] << 8) | payload[1]
    if not _valid_close_code(code):
        raise WSError("invalid close code " + str(code))
    try:
        reason = utf8.text(payload[2:])
    except ValueError:
        raise WSError("close reason is not UTF-8", _CLOSE_BAD_DATA) from None
    return code, reason
