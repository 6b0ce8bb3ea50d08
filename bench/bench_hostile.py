"""Hostile network input against a live `sysboy serve`, while a good device is timed.

    python bench/bench_hostile.py            # full figures (about 3 minutes)
    python bench/bench_hostile.py --quick    # the same attacks, smaller
    python bench/bench_hostile.py --trust    # only the trust figures (about 2 minutes)

Phases, one after the other, each reported with the good device's latency and
inter-arrival next to the quiet baseline measured first, and the server's RSS and
open files before and after:
1. malformed frames from one client (JSON-level and WebSocket-level), reconnecting
   whenever the server closes it;
2. connections that complete the handshake and never send `hello`;
3. slowloris: handshakes trickled one byte at a time;
4. clients that read nothing;
5. floods at 1,000 frames/s from one device: valid, bad, and mixed;
then the trust figures, each on a server of its own: control calls while a stranger
floods pings, 3,000 stranger ids pressing the button, and 5,000 idle or half-open
connections against a server started at a desktop's open-file limits.
Attacks come from a second loopback address, 127.0.0.2.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import os
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live import GoodDevice, Server, pairing, start_server
from bench.live import link as link_meter
from tests.handshake import hello as unpaired_hello

# -- a raw WebSocket client: it can break every rule ----------------------------------------

# attacks come from a second loopback address: a stranger, not this PC's own programs
STRANGER = "127.0.0.2"

TEXT, BINARY, CLOSE, PING, CONT = 0x1, 0x2, 0x8, 0x9, 0x0


def frame(
    payload: bytes, opcode: int = TEXT, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One client frame; every field can be set wrong on purpose."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /device HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class RawLink:
    """A TCP connection that speaks WebSocket by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(
        cls, port: int, *, handshake: bool = True, rcvbuf: int = 0, source: str = STRANGER
    ) -> RawLink:
        sock = socket.socket()
        sock.bind((source, 0))
        if rcvbuf:  # a small window, so a client that reads nothing fills up fast
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        link = cls(reader, writer)
        if handshake:
            writer.write(upgrade_request(port))
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        return link

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_frame(self) -> tuple[int, bytes]:
        """The server's next frame (opcode, payload); IncompleteReadError at EOF."""
        first, second = await self.reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(size)

    async def until_closed(self) -> tuple[int | None, list[dict[str, Any]]]:
        """Read to the end: the close code (None if the socket just ended) and the messages."""
        messages = []
        try:
            while True:
                opcode, payload = await self.next_frame()
                if opcode == CLOSE:
                    return (struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005), (
                        messages
                    )
                if opcode == TEXT:
                    messages.append(json.loads(payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None, messages

    def close(self) -> None:
        self.writer.transport.abort()


async def link_as(link: RawLink, port: int, device_id: str, **hello_args: Any) -> None:
    """Say hello on a raw link as a meter paired with the server, and prove the key."""
    from tests.handshake import hello, proof

    paired = pairing(port, device_id)
    mine = hello(device_id, paired, **hello_args)
    await link.send(frame(json.dumps(mine).encode()))
    _, payload = await link.next_frame()
    await link.send(frame(json.dumps(proof(mine, json.loads(payload), paired)).encode()))


# -- 1. malformed frames ----------------------------------------------------------------------

# answered with an `error`; five in a row close the link with 1008
BAD_MESSAGES = [
    frame(b"{"),
    frame(b"[]"),
    frame(b"null"),
    frame(b'{"type": 5}'),
    frame(b'{"type": "teleport"}'),
    frame(b'{"type": "cpu", "value": 1}'),
    frame(b'{"type": "status", "rssi": "loud", "heap": 1, "uptime": 1}'),
    frame(b'{"type": "status", "rssi": -50, "heap": 1, "uptime": NaN}'),
    frame(b'{"type": "status", "rssi": -50, "heap": -1, "uptime": 1e999}'),
    frame(b'{"type": "button", "event": "double"}'),
    frame(b'{"type": "ack", "of": "' + b"x" * 300 + b'"}'),
    frame(b'{"type": "hello", "proto": 2, "id": "again"}'),
    frame(b"[" * 2000 + b"]" * 2000),
    frame(b'{"type": "status"}', BINARY),
]
# break the WebSocket framing itself: the link closes at once (1002, 1007 or 1009)
BAD_FRAMES = [
    frame(b'{"type":"status"}', rsv=4),  # RSV1 without an extension
    frame(b"x", opcode=0x3),  # reserved opcode
    frame(b'{"type":"status"}', mask=False),  # clients must mask
    frame(b'{"type": "\xff\xfe"}'),  # text that is not UTF-8
    frame(b"ping", PING, fin=False),  # fragmented control frame
    frame(b"p" * 126, PING),  # control frame over 125 bytes
    frame(b"orphan", CONT),  # continuation with nothing to continue
    frame(b"x" * 5000),  # over max_size
    bytes([0x81, 0xFF]) + struct.pack("!Q", 2**63 - 1) + b"\0\0\0\0",  # absurd length
    frame(struct.pack("!H", 999), CLOSE),  # invalid close code
]


@dataclass
class MalformedResult:
    frames: int = 0
    connections: int = 0
    errors: int = 0
    closes: collections.Counter[int | None] = field(default_factory=collections.Counter)
    seconds: float = 0.0
    refused: int = 0  # reconnections refused because this address held too many links


async def malformed(port: int, total: int, min_seconds: float = 0.0) -> MalformedResult:
    """At least `total` malformed frames (and `min_seconds`) from one client, which
    reconnects whenever it is closed."""
    result = MalformedResult()
    started = time.monotonic()
    turn = 0
    while result.frames < total or time.monotonic() - started < min_seconds:
        try:
            link = await RawLink.open(port)
        except (ConnectionError, asyncio.IncompleteReadError):
            # links it left are still closing on the server: over the cap per address
            result.refused += 1
            await asyncio.sleep(0.05)
            continue
        result.connections += 1
        await link_as(link, port, "malformed")
        reading = asyncio.create_task(link.until_closed())
        turn += 1
        # one link in four breaks the framing; the others send bad JSON until closed
        batch = [BAD_FRAMES[turn % len(BAD_FRAMES)]] if turn % 4 == 0 else BAD_MESSAGES
        try:
            for index in range(len(batch)):
                if reading.done():
                    break
                await link.send(batch[(turn + index) % len(batch)])
                result.frames += 1
        except ConnectionError:
            pass
        code, messages = await reading
        link.close()
        result.closes[code] += 1
        result.errors += sum(1 for m in messages if m.get("type") == "error")
    result.seconds = time.monotonic() - started
    return result


# -- 2. connections that never say hello --------------------------------------------------------


@dataclass
class SilentResult:
    opened: int = 0
    refused: int = 0
    closes: collections.Counter[int | None] = field(default_factory=collections.Counter)
    close_after_s: list[float] = field(default_factory=list)


async def silent(port: int, count: int, source: str = STRANGER) -> SilentResult:
    """`count` links that complete the handshake and then say nothing."""
    result = SilentResult()

    async def one() -> None:
        try:
            link = await RawLink.open(port, source=source)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            result.refused += 1
            return
        result.opened += 1
        opened = time.monotonic()
        code, _ = await link.until_closed()
        result.close_after_s.append(time.monotonic() - opened)
        result.closes[code] += 1
        link.close()

    await asyncio.gather(*(one() for _ in range(count)))
    return result


# -- 3. slowloris -------------------------------------------------------------------------------


@dataclass
class SlowResult:
    links: int = 0
    bytes_sent: int = 0
    cut_after_s: list[float] = field(default_factory=list)
    completed: int = 0  # handshakes that got through (should be none)
    fresh_client_ok: bool = False


async def slowloris(
    port: int, count: int, byte_every: float, limit: float, source: str = STRANGER
) -> SlowResult:
    """`count` links trickling their handshake; meanwhile a fresh client must get in."""
    from websockets.asyncio.client import connect

    result = SlowResult()
    request = upgrade_request(port)

    async def one() -> None:
        link = await RawLink.open(port, handshake=False, source=source)
        result.links += 1
        opened = time.monotonic()
        try:
            for byte in request:
                link.writer.write(bytes([byte]))
                await link.writer.drain()
                result.bytes_sent += 1
                await asyncio.sleep(byte_every)
                if link.reader.at_eof() or time.monotonic() - opened > limit:
                    break
            else:
                result.completed += 1
            await asyncio.wait_for(
                link.reader.read(), max(0.1, limit - (time.monotonic() - opened))
            )
        except (ConnectionError, TimeoutError):
            pass
        result.cut_after_s.append(time.monotonic() - opened)
        link.close()

    async def fresh() -> None:
        await asyncio.sleep(min(2.0, limit / 4))
        async with connect(f"ws://127.0.0.1:{port}/device", open_timeout=5) as ws:
            await link_meter(ws, port, "fresh")
            result.fresh_client_ok = json.loads(await ws.recv())["type"] == "welcome"

    await asyncio.gather(fresh(), *(one() for _ in range(count)))
    return result


# -- 4. clients that read nothing ---------------------------------------------------------------


@dataclass
class DeafResult:
    links: int = 0
    refused: int = 0
    dropped: int = 0
    dropped_after_s: list[float] = field(default_factory=list)


async def deaf(port: int, count: int, seconds: float) -> DeafResult:
    """`count` devices that say hello and never read again (tiny receive window)."""
    result = DeafResult()

    async def one(index: int) -> None:
        try:
            link = await RawLink.open(port, rcvbuf=4096)
        except (ConnectionError, asyncio.IncompleteReadError):
            result.refused += 1  # past the cap per address
            return
        result.links += 1
        await link_as(link, port, f"deaf-{index}")
        opened = time.monotonic()
        # we read nothing; we only notice when the server gives up on us (the socket ends)
        sock = link.writer.get_extra_info("socket")
        while time.monotonic() - opened < seconds:
            await asyncio.sleep(0.5)
            try:
                await link.send(b"")  # a zero-length write notices a reset
                if sock.fileno() < 0 or link.writer.is_closing():
                    raise ConnectionResetError
                info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
                if info[0] in (7, 8):  # TCP_CLOSE, TCP_CLOSE_WAIT: the server closed
                    raise ConnectionResetError
            except (ConnectionError, OSError):
                result.dropped += 1
                result.dropped_after_s.append(time.monotonic() - opened)
                break
        link.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    return result


# -- 5. floods -----------------------------------------------------------------------------------

STATUS = frame(b'{"type":"status","rssi":-50,"heap":100000,"uptime":1}')


@dataclass
class FloodResult:
    kind: str
    sent: int = 0
    errors: int = 0
    close: int | None = None
    closed_after_s: float = 0.0


async def flood(port: int, kind: str, rate: float, seconds: float) -> FloodResult:
    """Frames at `rate`/s from one device: `valid` statuses, `bad` JSON, or `mixed`."""
    result = FloodResult(kind)
    link = await RawLink.open(port)
    await link_as(link, port, f"flood-{kind}")
    reading = asyncio.create_task(link.until_closed())
    started = time.monotonic()
    try:
        while not reading.done() and time.monotonic() - started < seconds:
            if kind == "valid" or (kind == "mixed" and result.sent % 2):
                data = STATUS
            else:
                data = BAD_MESSAGES[result.sent % 4]
            await link.send(data)
            result.sent += 1
            # pace to `rate` on average; sleep in 10 ms steps (finer sleeps are not kept)
            ahead = result.sent / rate - (time.monotonic() - started)
            if ahead > 0.01:
                await asyncio.sleep(ahead)
    except ConnectionError:
        pass
    if not reading.done():
        link.close()
    code, messages = await reading
    result.closed_after_s = time.monotonic() - started
    result.close = code
    result.errors = sum(1 for m in messages if m.get("type") == "error")
    link.close()
    return result


# -- 6. pings -----------------------------------------------------------------------------------


@dataclass
class PingResult:
    sent: int = 0
    links: int = 0
    cut: int = 0  # links the server cut off
    refused: int = 0  # new links refused (the address held too many)


async def _drain(link: RawLink) -> None:
    """Read and drop what the server sends (pongs), until it ends the connection."""
    with contextlib.suppress(ConnectionError):
        while await link.reader.read(65536):
            pass


async def ping_flood(
    port: int, seconds: float, source: str = STRANGER, again: bool = False
) -> PingResult:
    """Pings as fast as one connection can write them (no hello), until the server cuts
    it off or `seconds` pass; with `again`, a new connection each time it is cut off."""
    result = PingResult()
    burst = frame(b"", PING) * 512
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            link = await RawLink.open(port, source=source)
        except (ConnectionError, asyncio.IncompleteReadError):
            result.refused += 1
            await asyncio.sleep(0.05)
            continue
        result.links += 1

        draining = asyncio.create_task(_drain(link))
        try:
            while not draining.done() and time.monotonic() < deadline:
                if link.writer.is_closing() or link.reader.at_eof():
                    break  # cut off: writes would only pile up here
                await link.send(burst)
                result.sent += 512
        except ConnectionError:
            pass
        try:
            await asyncio.wait_for(asyncio.shield(draining), max(0.1, deadline - time.monotonic()))
            result.cut += 1
        except TimeoutError:
            draining.cancel()
        link.close()
        if not again:
            break
    return result


# -- 7. connection exhaustion ------------------------------------------------------------------


@dataclass
class ExhaustResult:
    workers: int = 0
    attempts: int = 0
    upgraded: int = 0  # silent links that got their 101 before going quiet
    held_peak: int = 0  # connections this attacker had open at once
    closed_by_server: int = 0
    failed: collections.Counter[str] = field(default_factory=collections.Counter)


async def exhaust(
    port: int, count: int, seconds: float, source: str = STRANGER, retry_s: float = 1.0
) -> ExhaustResult:
    """`count` connections from `source`, each reopened when the server closes it.

    A third stay idle (not a byte), a third are half-open (half an upgrade request,
    never finished), a third upgrade and then say nothing.
    """
    result = ExhaustResult(workers=count)
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + seconds
    held = 0
    request = upgrade_request(port)

    async def one(index: int) -> None:
        nonlocal held
        kind = index % 3
        while time.monotonic() < deadline:
            sock = socket.socket()
            # a reset on close: tens of thousands of sockets must not sit in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.setblocking(False)
            counted = False
            try:
                sock.bind((source, 0))
                result.attempts += 1
                await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), retry_s * 5)
                held += 1
                counted = True
                result.held_peak = max(result.held_peak, held)
                if kind == 1:
                    await loop.sock_sendall(sock, request[: len(request) // 2])
                elif kind == 2:
                    await loop.sock_sendall(sock, request)
                    head = await asyncio.wait_for(loop.sock_recv(sock, 4096), retry_s * 5)
                    if not head.startswith(b"HTTP/1.1 101"):
                        raise ConnectionResetError
                    result.upgraded += 1
                # hold it until the server lets go (or the attack ends)
                left = deadline - time.monotonic()
                while left > 0 and await asyncio.wait_for(loop.sock_recv(sock, 4096), left):
                    left = deadline - time.monotonic()
            except TimeoutError:
                pass
            except OSError as exc:
                result.failed[type(exc).__name__] += 1
            finally:
                if counted:
                    held -= 1
                    if time.monotonic() < deadline:
                        result.closed_by_server += 1
                sock.close()
            await asyncio.sleep(retry_s)

    await asyncio.gather(*(one(i) for i in range(count)))
    return result


# -- 7b. strangers pressing the button -----------------------------------------------------------


@dataclass
class PressResult:
    ids: int = 0
    moved: int = 0  # presses after which the stranger's needle showed another metric
    seconds: float = 0.0
    refused: int = 0  # links refused over the cap per address (and tried again)
    turned_away: int = 0  # strangers closed with 1008 at their press (they hold no key)


async def strangers_press(
    port: int, ids: list[str], concurrency: int = 8, source: str = STRANGER, paired: bool = False
) -> PressResult:
    """Each id links, presses the button once and (when `paired`, so it gets samples)
    waits until its needle shows the next metric; `concurrency` links at a time from
    `source`. Unpaired ids say hello without a key: the PC shows them no metric at all."""
    result = PressResult(ids=len(ids))
    queue = list(reversed(ids))
    started = time.monotonic()

    async def first_sample(link: RawLink, other_than: str | None) -> str:
        while True:
            opcode, payload = await asyncio.wait_for(link.next_frame(), 10)
            if opcode != TEXT:
                continue
            message = json.loads(payload)
            kind = message.get("type")
            if "value" in message and kind != other_than:
                return str(kind)

    async def worker() -> None:
        while queue:
            device_id = queue.pop()
            try:
                link = await RawLink.open(port, source=source)
            except (ConnectionError, asyncio.IncompleteReadError):
                # links just closed may not be counted off yet: over the cap, try again
                result.refused += 1
                queue.append(device_id)
                await asyncio.sleep(0.05)
                continue
            try:
                if not paired:
                    # a stranger: no key, so no sample; its press is answered by a close
                    await link.send(frame(json.dumps(unpaired_hello(device_id, None)).encode()))
                    await link.send(frame(b'{"type": "button", "event": "press"}'))
                    code, _ = await link.until_closed()
                    result.turned_away += code == 1008
                    continue
                await link_as(link, port, device_id)
                shown = await first_sample(link, None)
                await link.send(frame(b'{"type": "button", "event": "press"}'))
                await first_sample(link, shown)
                result.moved += 1
            finally:
                link.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.monotonic() - started
    return result


# -- 8. the whole exhaustion scenario, at a desktop's open-file limits ----------------------------

DESKTOP_FILES = (1024, 4096)  # soft, hard: a common desktop session's limits


async def meter_link_s(port: int, device_id: str, timeout: float) -> float:
    """Seconds for a meter on this PC's own address to connect, prove its key and be welcomed."""
    from websockets.asyncio.client import connect

    started = time.monotonic()
    # the whole of it within `timeout`: TimeoutError past that
    async with asyncio.timeout(timeout), connect(f"ws://127.0.0.1:{port}/device") as ws:
        await link_meter(ws, port, device_id)
        reply = json.loads(await ws.recv())
        if reply.get("type") != "welcome":  # the proven link's first word (protocol v2)
            raise ConnectionError(f"the server answered {reply!r}")
        linked = time.monotonic() - started
    return linked


def status_run(server: Server, timeout: float) -> tuple[int, float, str]:
    """`sysboy status` against the server: (exit status, seconds, what it printed)."""
    import subprocess

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sysboy_tray", "status"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=server.env,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, time.monotonic() - started, done.stdout + done.stderr


@dataclass
class Exhaustion:
    limits: tuple[int, int]  # the server's open-file limits while attacked
    attack: ExhaustResult
    files_before: int
    files_peak: int
    link_s: list[float]
    status: list[tuple[int, float]]
    status_text: str
    log_bytes: int

    def lines(self) -> list[str]:
        a = self.attack
        links = ", ".join(f"{t:.2f}" for t in self.link_s)
        statuses = ", ".join(f"exit {code} in {t:.2f} s" for code, t in self.status)
        return [
            f"server open-file limits  soft {self.limits[0]}, hard {self.limits[1]} "
            f"(started at soft {DESKTOP_FILES[0]}, hard {DESKTOP_FILES[1]})",
            f"attacker                 {a.workers} connections from {STRANGER} (idle, half-open, "
            f"silent), {a.attempts} attempts, held {a.held_peak} at once at its end, "
            f"{a.upgraded} upgraded, {a.closed_by_server} closed by the server",
            f"server open files        {self.files_before} before, {self.files_peak} at the peak",
            f"good meter linked in     {links} s (from 127.0.0.1, during the attack)",
            f"sysboy status            {statuses}",
            f"log folder               {self.log_bytes} bytes after the attack",
        ]


def run_exhaustion(count: int, seconds: float, meter_timeout: float = 5.0) -> Exhaustion:
    """A server at a desktop's limits, `count` connections from a stranger, a meter timed."""
    import threading

    server = start_server(interval=0.5, open_files=DESKTOP_FILES)
    try:
        files_before = server.fds()
        peak = files_before
        sampling = True

        def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, server.fds())
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        async def main() -> tuple[ExhaustResult, list[float], list[tuple[int, float]], str]:
            attack = asyncio.create_task(exhaust(server.port, count, seconds))
            await asyncio.sleep(min(3.0, seconds / 3))  # the attack in full swing
            links, statuses, text = [], [], ""
            for turn in range(3):
                links.append(await meter_link_s(server.port, f"good-{turn}", meter_timeout))
                code, took, text = await asyncio.to_thread(status_run, server, 30.0)
                statuses.append((code, took))
                await asyncio.sleep(0.5)
            return await attack, links, statuses, text

        attack, links, statuses, text = asyncio.run(main())
        sampling = False
        sampler.join()
        limits = server.open_file_limits()
    finally:
        server.stop()
    return Exhaustion(limits, attack, files_before, peak, links, statuses, text, server.log_bytes())


# -- 9. trust: what a stranger can cost the PC -----------------------------------------------------


def control_latencies(server: Server, seconds: float) -> list[float]:
    """`status` over one control connection, one call after another, for `seconds`."""
    from sysboy_tray.config import Paths
    from sysboy_tray.control_client import ControlClient

    env = server.env
    paths = Paths(
        Path(env["SYSBOY_CONFIG_DIR"]), Path(env["SYSBOY_LOG_DIR"]), Path(env["SYSBOY_DATA_DIR"])
    )
    took = []
    with ControlClient.find(paths, timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            client.status()
            took.append(time.monotonic() - started)
            time.sleep(0.05)
    return sorted(took)


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"{len(values)} calls, p50 {values[len(values) // 2] * 1e3:.0f} ms, "
        f"max {values[-1] * 1e3:.0f} ms"
    )


def trust(quick: bool) -> list[str]:
    """Pings, a crowd of connections, strangers' button presses: the figures for docs."""
    import threading

    lines = []
    server = start_server(interval=0.5)
    try:
        quiet = control_latencies(server, 3.0)
        flooded: list[PingResult] = []
        pinger = threading.Thread(
            target=lambda: flooded.append(
                asyncio.run(ping_flood(server.port, 5.0 if quick else 15.0, again=True))
            )
        )
        pinger.start()
        time.sleep(0.3)
        during = control_latencies(server, 4.0 if quick else 14.0)
        pinger.join()
        pings = flooded[0]
        lines += [
            f"control calls, quiet     {_spread(quiet)}",
            f"control calls, pinged    {_spread(during)} while one stranger sent "
            f"{pings.sent} pings over {pings.links} connections ({pings.cut} cut off by the "
            f"server, {pings.refused} refused)",
        ]
        settings = Path(server.env["SYSBOY_CONFIG_DIR"]) / "settings.json"
        before = settings.read_bytes(), settings.stat().st_mtime_ns
        count = 500 if quick else 3000
        pressed = asyncio.run(strangers_press(server.port, [f"s-{i}" for i in range(count)]))
        time.sleep(0.5)
        same = (settings.read_bytes(), settings.stat().st_mtime_ns) == before
        lines.append(
            f"stranger button presses  {pressed.moved} of {pressed.ids} ids moved their needle in "
            f"{pressed.seconds:.1f} s ({pressed.refused} links refused over the cap and "
            f"tried again); settings.json unchanged: {same}"
        )
    finally:
        server.stop()
    crowd = run_exhaustion(1000 if quick else 5000, 10.0 if quick else 20.0)
    return lines + crowd.lines()


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    start: float
    end: float
    rss_before: float
    rss_after: float
    fds_before: int
    fds_after: int
    detail: str


def run_phase(server: Server, name: str, attack: Any, settle: float = 3.0) -> Phase:
    rss, fds = server.rss_mb(), server.fds()
    start = time.monotonic()
    detail = asyncio.run(attack)
    end = time.monotonic()
    time.sleep(settle)  # let the server finish closing what it closes
    return Phase(name, start, end, rss, server.rss_mb(), fds, server.fds(), describe(detail))


def describe(result: Any) -> str:
    if isinstance(result, MalformedResult):
        return (
            f"{result.frames} frames over {result.connections} links in {result.seconds:.1f} s "
            f"({result.frames / result.seconds:.0f}/s), {result.errors} error replies, "
            f"closes {dict(result.closes)}, {result.refused} reconnections refused"
        )
    if isinstance(result, SilentResult):
        waits = sorted(result.close_after_s) or [float("nan")]
        return (
            f"{result.opened} silent links ({result.refused} refused), closes "
            f"{dict(result.closes)}, closed after {waits[0]:.1f}..{waits[-1]:.1f} s"
        )
    if isinstance(result, SlowResult):
        cuts = sorted(result.cut_after_s) or [float("nan")]
        return (
            f"{result.links} trickling links, {result.bytes_sent} bytes, "
            f"{result.completed} completed, cut after {cuts[0]:.1f}..{cuts[-1]:.1f} s, "
            f"fresh client served: {result.fresh_client_ok}"
        )
    if isinstance(result, DeafResult):
        after = sorted(result.dropped_after_s) or [float("nan")]
        return (
            f"{result.links} links that read nothing ({result.refused} refused), "
            f"{result.dropped} dropped by the server "
            f"after {after[0]:.1f}..{after[-1]:.1f} s"
        )
    if isinstance(result, list):
        return "; ".join(
            f"{r.kind}: {r.sent} sent, {r.errors} errors, close {r.close} "
            f"after {r.closed_after_s:.2f} s"
            for r in result
        )
    return str(result)


async def floods(port: int, rate: float, seconds: float) -> list[FloodResult]:
    return [await flood(port, kind, rate, seconds) for kind in ("valid", "bad", "mixed")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller attacks")
    parser.add_argument("--trust", action="store_true", help="only the trust figures")
    args = parser.parse_args()
    quick = args.quick
    from sysboy_tray.limits import raise_open_file_limit

    raise_open_file_limit()  # the crowd of connections needs thousands of sockets here too
    if args.trust:
        print("== trust (a stranger at 127.0.0.2)")
        print("\n".join(trust(quick)))
        return 0
    server = start_server(interval=0.1)
    device = GoodDevice(server.port)
    device.wait_ready()
    phases: list[Phase] = []
    rss_rounds = []
    try:
        time.sleep(2.0)
        rss_start = server.rss_mb()
        quiet_from = time.monotonic()
        time.sleep(5.0 if quick else 15.0)
        quiet_to = time.monotonic()
        # twice: the first round finds the high-water mark, the second shows it holds
        for round_no in (1, 2):
            plan = [
                (
                    "malformed",
                    malformed(server.port, 1000 if quick else 10_000, 3 if quick else 10),
                ),
                ("no hello", silent(server.port, 100 if quick else 500)),
                ("slowloris", slowloris(server.port, 50 if quick else 200, 0.5, 15.0)),
                ("reads nothing", deaf(server.port, 10 if quick else 50, 15.0 if quick else 50.0)),
                ("1,000 frames/s", floods(server.port, 1000.0, 10.0)),
            ]
            for name, attack in plan:
                print(f"... round {round_no}: {name}", flush=True)
                phases.append(run_phase(server, f"round {round_no}, {name}", attack))
            rss_rounds.append(server.rss_mb())
    finally:
        record = device.stop()
        code = server.stop()
    quiet = record.window(quiet_from, quiet_to)
    print("== good device (10 Hz clock metric), quiet baseline")
    print(f"baseline         {quiet.line()}")
    for phase in phases:
        timing = record.window(phase.start, phase.end)
        print(f"== {phase.name}: {phase.detail}")
        print(
            f"good device      {timing.line()}; p99 latency {timing.p99_ms / quiet.p99_ms:4.1f}x "
            f"baseline, inter-arrival p99 {timing.gap_p99_ms / quiet.gap_p99_ms:4.2f}x"
        )
        print(
            f"server           RSS {phase.rss_before:5.1f} -> {phase.rss_after:5.1f} MB, "
            f"open files {phase.fds_before} -> {phase.fds_after}"
        )
    whole = record.window(phases[0].start, phases[-1].end)
    print("== overall")
    print(f"good device      {whole.line()} (other messages: {record.other})")
    print(
        f"server RSS       {rss_start:5.1f} MB before the attacks, {rss_rounds[0]:5.1f} MB "
        f"after round 1, {rss_rounds[1]:5.1f} MB after round 2 "
        f"(round 2 grew it by {rss_rounds[1] - rss_rounds[0]:+.1f} MB)"
    )
    problems = server.problems()
    print(f"server log       {len(problems)} ERROR/traceback lines; exit status {code}")
    for line in problems[:20]:
        print(f"  {line}")
    print("== trust (a stranger at 127.0.0.2)")
    print("\n".join(trust(quick)))
    return 1 if problems or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
