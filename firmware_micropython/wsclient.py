"""WebSocket client (RFC 6455) over asyncio streams, for MicroPython and CPython.

Read timeouts: `recv(timeout)`. `recv()` is also safe to cancel (bytes already read stay
buffered for the next call), but a message that arrives as a wait_for around it runs out
can be lost.
"""

import asyncio
import os
import sys

import utf8
import wsframe
from micropython import const
from wsframe import WSError

_ETIMEDOUT = const(110)
_CLOSE_WAIT_S = const(2)
# RFC 6455's opcodes and close codes, as wsframe has them (private constants cost no heap)
_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BINARY = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)
_MAX_PAYLOAD = const(4096)
_CLOSE_NORMAL = const(1000)
_CLOSE_UNSUPPORTED = const(1003)
_CLOSE_NO_STATUS = const(1005)
_CLOSE_ABNORMAL = const(1006)
_CLOSE_BAD_DATA = const(1007)
_CLOSE_TOO_BIG = const(1009)


class WSClosed(WSError):
    """The connection is closed; `code` says why (1006: lost without a close frame)."""

    def __init__(self, code, reason=""):
        super().__init__(f"connection closed ({code}) {reason}", code)
        self.reason = reason


def _random_mask():
    return os.urandom(4)


async def _close_stream(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:  # the socket is going away whatever happened
        pass


async def connect(host, port, path="/device", timeout=5, buf=None):
    """Open a WebSocket to ws://host:port/path; raises WSError or OSError.

    `buf`: the receive buffer (a bytearray of at least 4096 + 14 bytes: a whole frame), so
    a caller can take it once while the heap is in one piece and keep it across links; by
    default a new one."""
    import wsopen  # the opening handshake's code: in the heap only while a link opens

    try:
        try:
            reader, writer = await wsopen.open_stream(host, port, timeout)
        except asyncio.TimeoutError:
            raise OSError(_ETIMEDOUT, "no answer from the server") from None
        parser = wsframe.FrameParser(buf=buf)
        try:
            handshake = wsopen.handshake(reader, writer, host, port, path, parser)
            await asyncio.wait_for(handshake, timeout)
        except asyncio.TimeoutError:
            await _close_stream(writer)
            raise OSError(_ETIMEDOUT, "the server did not finish the handshake") from None
        except BaseException:
            await _close_stream(writer)
            raise
        return WebSocket(reader, writer, parser)
    finally:
        del wsopen
        sys.modules.pop("wsopen", None)


class WebSocket:
    """One open client connection."""

    def __init__(self, reader, writer, parser, mask=_random_mask):
        self._reader = reader
        self._writer = writer
        self._parser = parser
        self._mask = mask
        self._fragments = None
        self._close_sent = False
        self._receiving = False
        # MicroPython's stream reads straight into our buffer; CPython's needs a copy.
        self._readinto = getattr(reader, "readinto", None)
        self.closed = False
        self.close_code = None

    async def _shutdown(self):
        self.closed = True
        await _close_stream(self._writer)
        self._parser = None  # a buffer of our own (none given to connect) leaves the heap

    async def _write(self, opcode, payload):
        self._writer.write(wsframe.encode_frame(opcode, payload, self._mask()))
        await self._writer.drain()

    async def _fill(self):
        space = self._parser.space()
        if not len(space):
            raise WSError("receive buffer full", _CLOSE_TOO_BIG)
        if self._readinto is not None:
            n = await self._readinto(space)
        else:
            data = await self._reader.read(len(space))
            n = len(data)
            space[:n] = data
        if n is None:
            return
        if not n:
            await self._lost()
        self._parser.filled(n)

    async def _lost(self):
        self.close_code = _CLOSE_ABNORMAL
        await self._shutdown()
        raise WSClosed(_CLOSE_ABNORMAL, "connection lost")

    async def _fail(self, error):
        """Answer a protocol violation with a close frame, drop the connection, raise."""
        if not self._close_sent:
            self._close_sent = True
            try:
                await self._write(_OP_CLOSE, wsframe.close_payload(error.code, str(error)))
            except OSError:
                pass
        self.close_code = error.code
        await self._shutdown()
        raise error

    async def recv(self, timeout=None):
        """The next whole text message, as str; pings are answered on the way.

        `timeout`: seconds to wait for the network each time (then asyncio.TimeoutError).
        Bytes read by then stay buffered for the next call, and no whole message is lost:
        around the whole of recv(), MicroPython's wait_for can raise TimeoutError over a
        message that came just as the time ran out, and that message is gone."""
        if self.closed:
            raise WSClosed(self.close_code or _CLOSE_ABNORMAL, "already closed")
        self._receiving = True
        try:
            while True:
                frame = self._parser.next()
                if frame is None:
                    if timeout is None:
                        await self._fill()
                    else:
                        await asyncio.wait_for(self._fill(), timeout)
                    continue
                text = await self._frame(frame[0], frame[1], frame[2])
                if text is not None:
                    return text
        except (WSClosed, asyncio.TimeoutError):  # CPython's TimeoutError is an OSError
            raise
        except WSError as error:
            await self._fail(error)
        except OSError:
            self.close_code = _CLOSE_ABNORMAL
            await self._shutdown()
            raise
        finally:
            self._receiving = False

    async def _frame(self, fin, opcode, payload):
        if opcode in (_OP_TEXT, _OP_CONT):
            return self._data(fin, opcode, payload)
        if opcode == _OP_PING:
            await self._write(_OP_PONG, bytes(payload))
            return None
        if opcode == _OP_CLOSE:
            await self._peer_closed(payload)
        if opcode == _OP_BINARY:
            raise WSError("binary frames are not part of the protocol", _CLOSE_UNSUPPORTED)
        return None  # a pong

    def _data(self, fin, opcode, payload):
        if opcode == _OP_TEXT:
            if self._fragments is not None:
                raise WSError("new message before the last one ended")
            if fin:
                return _utf8(payload)
            self._fragments = bytearray(payload)
            return None
        if self._fragments is None:
            raise WSError("continuation frame without a message")
        if len(self._fragments) + len(payload) > _MAX_PAYLOAD:
            self._fragments = None
            raise WSError("message over 4096 bytes", _CLOSE_TOO_BIG)
        self._fragments += payload
        if not fin:
            return None
        whole = self._fragments
        self._fragments = None
        return _utf8(whole)

    async def _peer_closed(self, payload):
        code, reason = wsframe.parse_close(payload)
        if not self._close_sent:
            self._close_sent = True
            echo = b"" if code == _CLOSE_NO_STATUS else wsframe.close_payload(code)
            try:
                await self._write(_OP_CLOSE, echo)
            except OSError:
                pass
        self.close_code = code
        await self._shutdown()
        raise WSClosed(code, reason)

    async def send(self, text):
        """Send one text message (at most 4096 bytes of UTF-8)."""
        if self.closed or self._close_sent:
            raise WSClosed(self.close_code or _CLOSE_ABNORMAL, "already closed")
        await self._write(_OP_TEXT, text.encode("utf-8"))

    async def close(self, code=_CLOSE_NORMAL, reason=""):
        """Close handshake: send our close frame, wait a little for the server's, drop.

        Called while another task sits in `recv()`, it does not wait for the answer
        (one reader at a time); that `recv()` then fails as the socket goes away.
        """
        if self.closed:
            return
        try:
            if not self._close_sent:
                self._close_sent = True
                await self._write(_OP_CLOSE, wsframe.close_payload(code, reason))
            if not self._receiving:
                await asyncio.wait_for(self._drain_until_closed(), _CLOSE_WAIT_S)
        except (WSError, OSError, asyncio.TimeoutError):
            pass
        if self.close_code is None:
            self.close_code = code
        await self._shutdown()

    async def _drain_until_closed(self):
        while True:
            frame = self._parser.next()
            if frame is None:
                await self._fill()
            elif frame[1] == _OP_CLOSE:
                self.close_code = wsframe.parse_close(frame[2])[0]
                return


def _utf8(payload):
    try:
        return utf8.text(payload)
    except ValueError:
        raise WSError("text frame is not UTF-8", _CLOSE_BAD_DATA) from None
