"""The firmware's WebSocket client under MicroPython against a real websockets server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.conftest import scaled
from tests.firmware.upy import micropython

PROBE = Path(__file__).parent / "ws_probe.py"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# UTF-8 that RFC 3629 forbids and MicroPython's str() takes: overlong, surrogate, too high
NOT_UTF8 = {
    "overlong": b"\xc0\xaf",
    "overlong3": b"\xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "high": b"\xf4\x90\x80\x80",
}


def raw_frames(kind: str, bad: bytes) -> bytes:
    """Server frames (unmasked) carrying `bad`: one text frame, a fragmented one, or a close."""
    if kind == "text":
        payload = b'{"type":"' + bad + b'"}'
        return bytes([0x81, len(payload)]) + payload
    if kind == "fragments":  # the bad sequence is split across the two frames
        first, rest = b"ab" + bad[:1], bad[1:] + b"cd"
        return bytes([0x01, len(first)]) + first + bytes([0x80, len(rest)]) + rest
    reason = b"\x03\xe8bye " + bad
    return bytes([0x88, len(reason)]) + reason


async def run_probe(port: int, scenario: str, runtime: str = "micropython") -> list[str]:
    """Run the probe for `scenario` (under MicroPython unless told); its output lines."""
    binary = micropython() if runtime == "micropython" else sys.executable
    assert binary, "the micropython binary is missing"
    proc = await asyncio.create_subprocess_exec(
        binary,
        str(PROBE),
        str(port),
        scenario,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), scaled(30))
    lines = out.decode().splitlines()
    assert proc.returncode == 0, lines
    return lines


class Seen:
    """What the server saw from the device."""

    def __init__(self) -> None:
        self.close_codes: list[int | None] = []
        self.received: list[str | bytes] = []


async def handler(ws: ServerConnection, seen: Seen) -> None:
    path = ws.request.path if ws.request else ""
    try:
        if path == "/echo":
            async for message in ws:
                seen.received.append(message)
                await ws.send(message)
        elif path == "/fragments":
            await ws.send(iter(["frag", "men", "ted"]))
        elif path == "/ping":
            pong = await ws.ping(b"are you there")
            await asyncio.wait_for(pong, scaled(5))
            await ws.send("pong seen")
        elif path == "/binary":
            await ws.send(b"\x00\x01")
        elif path == "/big":
            await ws.send("x" * 5000)
        elif path == "/server_close":
            await ws.close(1001, "pc going to sleep")
        elif path == "/lost":
            ws.transport.abort()
        elif path.startswith("/bad-"):  # /bad-<kind>-<sequence>: raw frames, past the codec
            _, kind, name = path.split("-")
            ws.transport.write(raw_frames(kind, NOT_UTF8[name]))
        elif path == "/silence":
            seen.received.append(await ws.recv())
            await ws.send("after silence")
        await ws.wait_closed()
    except ConnectionClosed:
        pass
    seen.close_codes.append(ws.close_code)


def with_server(scenario: str, runtime: str = "micropython") -> tuple[list[str], Seen]:
    seen = Seen()

    async def main() -> list[str]:
        async with serve(lambda ws: handler(ws, seen), "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            lines = await run_probe(port, scenario, runtime)
            async with asyncio.timeout(scaled(5)):
                while not seen.close_codes:
                    await asyncio.sleep(0.01)
            return lines

    return asyncio.run(main()), seen


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_echo_masking_utf8_limits_and_close_handshake(runtime: str) -> None:
    lines, seen = with_server("echo", runtime)
    # the real server enforces client masking: every frame arrived
    assert lines == [
        "got hello",
        "accent 100 True",
        "len 4096",
        "many 300",
        "closed True 1000",
        "send after close refused",
    ]
    assert seen.received[:3] == ["hello", "\u00e9" * 100, "x" * 4096]
    assert len(seen.received) == 303
    assert seen.close_codes == [1000]


def test_fragmented_message_is_reassembled() -> None:
    lines, _ = with_server("fragments")
    assert lines == ["got fragmented"]


def test_ping_is_answered_with_pong_inside_recv() -> None:
    lines, _ = with_server("ping")
    assert lines == ["got pong seen"]


def test_binary_frame_is_refused_with_1003() -> None:
    lines, seen = with_server("binary")
    assert lines == ["refused 1003", "state True 1003"]
    assert seen.close_codes == [1003]


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_frame_over_4_kib_is_refused_with_1009(runtime: str) -> None:
    lines, seen = with_server("big", runtime)
    assert lines == ["refused 1009", "state True 1009"]
    assert seen.close_codes == [1009]


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
@pytest.mark.parametrize("kind", ["text", "fragments", "close"])
@pytest.mark.parametrize("sequence", sorted(NOT_UTF8))
def test_text_or_close_reason_that_is_not_utf8_closes_with_1007(
    sequence: str, kind: str, runtime: str
) -> None:
    lines, seen = with_server(f"bad-{kind}-{sequence}", runtime)
    assert lines == ["refused 1007", "state True 1007"]
    assert seen.close_codes == [1007]


def test_server_close_is_reported_with_its_code() -> None:
    lines, _ = with_server("server_close")
    assert lines == ["closed 1001 pc going to sleep", "state True 1001"]


def test_lost_connection_is_1006() -> None:
    lines, _ = with_server("lost")
    assert lines == ["closed 1006 connection lost", "state True 1006"]


def test_read_timeout_is_the_callers_and_loses_nothing() -> None:
    lines, seen = with_server("silence")
    assert lines == ["timeout", "timeout False", "got after silence"]
    assert seen.received == ["go"]


def test_close_while_another_task_receives() -> None:
    lines, seen = with_server("close_while_receiving")
    assert lines[0] == "closed True 1000"
    assert lines[1].startswith("recv failed"), lines
    assert seen.close_codes == [1000]


def test_a_buffer_given_to_connect_serves_one_link_after_another() -> None:
    lines, _ = with_server("reconnect")
    assert lines == ["got first", "same buffer True", "got again"]


# -- handshakes from servers that are not right ------------------------------------------


def _accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


Responder = Callable[[str], bytes]


def with_raw_server(respond: Responder) -> list[str]:
    """A hand-made HTTP server that answers the handshake with `respond(key)`."""

    async def main() -> list[str]:
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            key = ""
            for line in head.decode().split("\r\n"):
                if line.lower().startswith("sec-websocket-key:"):
                    key = line.split(":", 1)[1].strip()
            answer = respond(key)
            writer.write(answer)
            await writer.drain()
            if answer:
                writer.close()
            else:  # say nothing, keep the connection open
                await reader.read()

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        async with server:
            return await run_probe(server.sockets[0].getsockname()[1], "handshake")

    return asyncio.run(main())


def _upgrade(accept: str, extra: str = "") -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    ).encode()


def test_right_handshake_is_taken() -> None:
    assert with_raw_server(lambda key: _upgrade(_accept(key))) == ["connected"]


@pytest.mark.parametrize(
    ("respond", "words"),
    [
        (lambda key: _upgrade(_accept("not the key")), "Sec-WebSocket-Accept is wrong"),
        (lambda key: _upgrade(""), "Sec-WebSocket-Accept is wrong"),
        (
            lambda key: _upgrade(_accept(key), "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            "did not offer",
        ),
        (
            lambda key: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            "refused the WebSocket",
        ),
        (
            lambda key: _upgrade(_accept(key)).replace(b"Upgrade: websocket", b"Upgrade: h2c"),
            "did not upgrade",
        ),
        (lambda key: b"HTTP/1.1 101 OK\r\n" + b"X: " + b"y" * 3000, "too long"),
        (lambda key: b"HTTP/1.1 101", "closed the connection"),
    ],
    ids=["wrong-accept", "empty-accept", "extension", "403", "no-upgrade", "endless", "cut"],
)
def test_bad_handshake_is_refused_in_words(respond: Responder, words: str) -> None:
    lines = with_raw_server(respond)
    assert len(lines) == 1 and lines[0].startswith("refused"), lines
    assert words in lines[0]


def test_silent_server_is_an_os_error_after_the_timeout() -> None:
    lines = with_raw_server(lambda key: b"")
    assert len(lines) == 1 and lines[0].startswith("oserror"), lines
    assert "handshake" in lines[0]


def test_nobody_listening_is_an_os_error() -> None:
    async def main() -> list[str]:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await run_probe(port, "handshake")

    lines = asyncio.run(main())
    assert len(lines) == 1 and lines[0].startswith("oserror"), lines


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count sockets")
def test_every_connect_timeout_closes_its_socket() -> None:
    # the ESP32 has about ten sockets: asyncio's open_connection leaked one per timeout
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = []
        for _ in range(3):  # fill the accept queue: later SYNs go unanswered
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            queued.append(s)
        try:
            lines = asyncio.run(run_probe(port, "connect_timeouts"))
        finally:
            for s in queued:
                s.close()
    assert sum("no answer from the server" in line for line in lines) == 5, lines
    assert lines[-1] == "sockets left open 0", lines
