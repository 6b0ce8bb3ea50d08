"""The WebSocket client's opening handshake (RFC 6455 section 4): the TCP connection and the
HTTP upgrade. `wsclient.connect` loads it only while a link opens; then it leaves the heap.
"""

import asyncio
import binascii
import hashlib
import os

from micropython import const
from wsframe import WSError

_MAX_RESPONSE_HEAD = const(2048)
_GUID = const(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")


def accept_key(key):
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (str or bytes)."""
    if isinstance(key, str):
        key = key.encode()
    digest = hashlib.sha1(key + _GUID).digest()
    return binascii.b2a_base64(digest).strip().decode()


async def handshake(reader, writer, host, port, path, parser):
    """Ask for the upgrade to WebSocket and check the answer; bytes after its head go to
    `parser`. Raises WSError."""
    key = binascii.b2a_base64(os.urandom(16)).strip().decode()
    request = (
        "GET " + path + " HTTP/1.1\r\n"
        "Host: " + host + ":" + str(port) + "\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: " + key + "\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    _check_response(await _read_response_head(reader, parser), key)


def _writable(sock):
    """Wait until `sock` can be written: its connect finished (MicroPython's asyncio)."""
    yield asyncio.core._io_queue.queue_write(sock)


async def open_stream(host, port, timeout):
    """A TCP connection to host:port as (reader, writer), within `timeout` seconds.

    MicroPython's `asyncio.open_connection` leaks its socket when `wait_for` cancels it, and
    the ESP32 has about ten: here the socket is closed on any failure, a timeout included."""
    if getattr(asyncio, "core", None) is None:
        # CPython's open_connection closes its own socket when cancelled
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    import socket
    from errno import EINPROGRESS  # 115 on Linux, 119 in the ESP32's lwIP

    found = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
    sock = socket.socket(found[0], found[1], found[2])
    try:
        sock.setblocking(False)
        try:
            sock.connect(found[-1])
        except OSError as exc:
            if exc.errno != EINPROGRESS:
                raise
        await asyncio.wait_for(_writable(sock), timeout)
    except BaseException:
        sock.close()
        raise
    stream = asyncio.StreamWriter(sock)  # one MicroPython stream reads and writes
    return stream, stream


async def _read_response_head(reader, parser):
    """Read the HTTP response head into the parser's own buffer (taken at boot: a read of
    its own would need a free block of 512 bytes, which a small heap fragmented by discovery
    may not have); the bytes after it stay there, as the first frames. The head, as bytes."""
    readinto = getattr(reader, "readinto", None)  # MicroPython's stream; CPython reads
    while True:
        space = parser.space()
        if readinto is not None:
            got = await readinto(space)
        else:
            data = await reader.read(len(space))
            got = len(data)
            space[:got] = data
        if not got:
            raise WSError("the server closed the connection during the handshake")
        parser.filled(got)
        end = parser.buf.find(b"\r\n\r\n", 0, parser.end)
        if end >= 0:
            parser.start = end + 4
            return bytes(parser.view[:end])
        if parser.end > _MAX_RESPONSE_HEAD:
            raise WSError("the server's handshake answer is too long")


def _check_response(head, key):
    try:
        lines = str(head, "utf-8").split("\r\n")
    except ValueError:
        raise WSError("the server's handshake answer is not text") from None
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[0] != "HTTP/1.1" or status[1] != "101":
        raise WSError("the server refused the WebSocket: " + lines[0][:80])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise WSError("bad header line in the handshake answer")
        headers[name.strip().lower()] = value.strip()
    if headers.get("upgrade", "").lower() != "websocket":
        raise WSError("the server did not upgrade to websocket")
    tokens = [t.strip().lower() for t in headers.get("connection", "").split(",")]
    if "upgrade" not in tokens:
        raise WSError("the server did not answer 'Connection: Upgrade'")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise WSError("the server's Sec-WebSocket-Accept is wrong")
    # We offered no extension and no subprotocol: the server may not pick one.
    if "sec-websocket-extensions" in headers or "sec-websocket-protocol" in headers:
        raise WSError("the server chose an extension or subprotocol we did not offer")
