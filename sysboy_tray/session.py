"""One connected device: its hello, what it is sent, and what it sends back."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from sysboy_tray import handshake, protocol
from sysboy_tray.errors import ControlError, ProtocolError
from sysboy_tray.limits import FrameBudget, GuardedConnection
from sysboy_tray.metrics import Reading

if TYPE_CHECKING:
    from sysboy_tray.hub import Hub

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 5.0
HEARTBEAT_S = 5.0
MIN_MOVE = 0.1
MAX_BAD_IN_A_ROW = 5
MAX_PENDING_COMMANDS = 32
# a send that waits this long means the device stopped reading (its TCP window is shut):
# keepalive pings cannot time out behind a full buffer, so the link is cut here instead
SEND_STALL_S = 20.0
# above this many bytes waiting to go out, a device's samples take the slow, awaited path
DIRECT_WRITE_LIMIT = 16 * 1024
CLOSE_POLICY = 1008
UNAVAILABLE = "unavailable"  # the park reason while a metric has nothing to show


class Feed:
    """One needle's stream of samples: the metric it shows and what it was last sent."""

    def __init__(
        self, number: int, metric: str, calibration: tuple[protocol.Point, ...] = protocol.LINEAR
    ) -> None:
        self.number = number
        self.metric = metric
        self.calibration = calibration  # what the device holds for this needle
        self.reading: Reading | None = None
        self.due = False
        self.last_sent: float | None = None
        self.last_sent_at = 0.0
        self.parked = True  # the needle may be at rest: the next value must be sent
        self.said_unavailable = False

    @property
    def key(self) -> int | None:
        """The sample's `needle` key: absent for needle 1, so a one-needle meter gets the
        brief's plain `{"type": "vram", "value": 60.5}`."""
        return None if self.number == 1 else self.number


class DeviceSession:
    """A device's link: conflates samples so a slow reader never builds a queue."""

    def __init__(self, hub: Hub, ws: ServerConnection) -> None:
        self.hub = hub
        self.ws = ws
        self.hello: protocol.DeviceHello | None = None
        self.feeds: list[Feed] = [Feed(1, "")]  # one per needle, from the hello
        self.button_needle = 1  # the needle whose metric a press of the button cycles
        self.status: protocol.Status | None = None
        self._commands: collections.deque[protocol.Message] = collections.deque()
        self._wake = asyncio.Event()
        # (of, needle) -> the command waiting for that ack
        self._acks: dict[tuple[str, int | None], asyncio.Future[None]] = {}
        # pings and pongs draw on the same budget as messages (limits.py)
        self._budget = ws.budget if isinstance(ws, GuardedConnection) else FrameBudget()
        self._sending_since: float | None = None
        self.samples_sent = 0
        self._closing: asyncio.Future[None] | None = None
        self._heartbeat: asyncio.TimerHandle | None = None
        self._update_reply: asyncio.Future[protocol.UpdateStatus] | None = None
        self.ended = False  # the connection is over

    @property
    def device_id(self) -> str:
        return self.hello.id if self.hello else ""

    @property
    def metric(self) -> str:
        """What needle 1 shows."""
        return self.feeds[0].metric

    @property
    def metrics(self) -> tuple[str, ...]:
        """What each needle shows, needle 1 first."""
        return tuple(feed.metric for feed in self.feeds)

    def calibrated(self, number: int, points: tuple[protocol.Point, ...]) -> None:
        """Needle `number` acknowledged these calibration points."""
        self.feeds[number - 1].calibration = points

    def needle_key(self, number: int | None) -> int | None:
        """The `needle` key of a command for needle `number` (None: every needle)."""
        if number is not None and not 1 <= number <= len(self.feeds):
            raise ControlError(f"device '{self.device_id}' has no needle {number}")
        # a one-needle meter's commands stay as they always were
        return None if len(self.feeds) == 1 else number

    @property
    def address(self) -> str:
        peer = self.ws.remote_address
        return str(peer[0]) if peer else "?"

    # -- called by the hub (loop thread) --------------------------------------

    def offer(self, reading: Reading) -> None:
        """A new reading; send it to each needle showing its metric, if it matters there."""
        for feed in self.feeds:
            if feed.metric == reading.metric and self._due(feed, reading):
                feed.due = True
                self._wake.set()

    def take(self, feed: Feed, reading: Reading) -> bool:
        """Like `offer`, but True when the caller should write the sample itself, now.

        The hub writes one encoded frame to every device that takes it (a broadcast),
        which is far cheaper than waking a task per device. A device with commands
        queued, a send under way or a full write buffer goes the slow way, so frames
        keep their order and a slow reader still meets the stall guard.
        """
        if not self._due(feed, reading):
            return False
        transport = self.ws.transport
        if (
            self._commands
            or self._sending_since is not None
            or transport is None
            or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT
        ):
            feed.due = True
            self._wake.set()
            return False
        return True

    def _due(self, feed: Feed, reading: Reading) -> bool:
        feed.reading = reading
        if self.hub.sleeping:
            return False
        if not reading.available:
            if not feed.said_unavailable:
                feed.said_unavailable = True
                self._park_unavailable(feed)
            return False
        assert reading.percent is not None
        moved = feed.last_sent is None or abs(reading.percent - feed.last_sent) >= MIN_MOVE
        return moved or feed.parked or time.monotonic() - feed.last_sent_at >= HEARTBEAT_S

    def show(self, number: int, metric: str, reading: Reading | None) -> None:
        """Switch needle `number` to another metric and send its value at once."""
        feed = self.feeds[number - 1]
        feed.metric = metric
        feed.last_sent = None
        feed.reading = None
        feed.said_unavailable = False
        if reading is not None and self._due(feed, reading):
            feed.due = True
            self._wake.set()

    @property
    def backlog(self) -> tuple[int, int]:
        """(control messages queued, bytes waiting in the socket's write buffer)."""
        transport = self.ws.transport
        return len(self._commands), transport.get_write_buffer_size() if transport else 0

    def send(self, message: protocol.Message) -> None:
        """Queue a control message (bounded: the oldest is dropped past the limit)."""
        if len(self._commands) >= MAX_PENDING_COMMANDS:
            self._commands.popleft()
        self._commands.append(message)
        if isinstance(message, protocol.Park):
            for feed in self.feeds:
                if message.needle in (None, feed.number):
                    feed.parked = True
        self._wake.set()

    async def command(self, message: protocol.Message, timeout: float = 5.0) -> None:
        """Send a command the device acknowledges (calibration, settings) and wait for its ack.

        Raises:
            TimeoutError: no ack in time.
        """
        fields = protocol.to_dict(message)
        key = (fields["type"], fields.get("needle"))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[key] = future
        self.send(message)
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            if self._acks.get(key) is future:
                del self._acks[key]

    async def update_step(
        self, message: protocol.Update | protocol.Chunk, timeout: float
    ) -> protocol.UpdateStatus:
        """Send an update's manifest or one chunk and wait for the meter's answer.

        Raises:
            TimeoutError: no answer in time.
            ConnectionError: the link ended first.
        """
        if self.ended:
            raise ConnectionError("the link ended")
        future: asyncio.Future[protocol.UpdateStatus] = asyncio.get_running_loop().create_future()
        self._update_reply = future
        self.send(message)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if self._update_reply is future:
                self._update_reply = None

    async def park_now(self, reason: str, timeout: float = 0.5) -> None:
        """Send `park` at once, bypassing the queue (the app is quitting or the PC sleeping)."""
        for feed in self.feeds:
            feed.parked = True
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            await asyncio.wait_for(self.ws.send(protocol.encode(protocol.Park(reason))), timeout)

    def replaced(self) -> None:
        """The same device connected again: close this older link."""
        self._closing = asyncio.ensure_future(self.ws.close(1000, "replaced by a newer connection"))

    def end(self, reason: str) -> None:
        """This PC no longer trusts the meter (its key was dropped): close the link now."""
        self._closing = asyncio.ensure_future(self.ws.close(CLOSE_POLICY, reason))

    # -- the connection ---------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes."""
        try:
            first = await asyncio.wait_for(self.ws.recv(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await self.ws.close(CLOSE_POLICY, "hello expected within 5 s")
            return
        except ConnectionClosed:
            return
        try:
            hello = protocol.decode(first, "device")
        except ProtocolError as exc:
            await self._refuse_hello(str(exc))
            return
        if not isinstance(hello, protocol.DeviceHello):
            await self._refuse_hello("the first message must be 'hello'")
            return
        # a stranger, even one using a paired meter's id, goes no further than this
        if not await handshake.prove(
            self.ws, hello, self.hub.trust, self.hub.server_name, self.hub.changed
        ):
            return
        self.hello = hello
        self.feeds = [
            Feed(n, self.hub.metric_for(hello.id, n), points)
            for n, points in enumerate(hello_calibrations(hello), 1)
        ]
        log.info(
            "device %r (%r, fw %r) linked from %s", hello.id, hello.board, hello.fw, self.address
        )
        self.hub.attach(self)
        sender = asyncio.create_task(self._send_loop(), name=f"send-{hello.id}")
        try:
            self.send(protocol.Welcome(self.hub.metric_infos(), self.metrics))
            self._restore_calibrations(hello)
            for feed in self.feeds:
                reading = self.hub.readings.get(feed.metric)
                if reading is not None:
                    self.show(feed.number, feed.metric, reading)
            await self._receive_loop()
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            if self._heartbeat is not None:
                self._heartbeat.cancel()
            self.ended = True
            self.hub.detach(self)
            for future in self._acks.values():
                future.cancel()
            reply = self._update_reply
            if reply is not None and not reply.done():
                reply.set_exception(ConnectionError("the link ended"))
            log.info("device %s unlinked (%s)", hello.id, self.ws.close_code)

    def _restore_calibrations(self, hello: protocol.DeviceHello) -> None:
        """Send the calibration the PC keeps for each needle whose copy on the meter differs."""
        saved = self.hub.store.settings.devices.get(hello.id)
        if saved is None:
            return  # the PC keeps nothing for this meter: the meter's own copy stands
        for feed in self.feeds:
            if feed.number > len(saved.needles):
                break
            points = saved.needle(feed.number).calibration
            if not same_points(points, feed.calibration):
                log.info(
                    "device %r needle %d: sending the saved calibration", hello.id, feed.number
                )
                self.send(protocol.Calibration(points, needle=feed.number))
                feed.calibration = points

    async def _refuse_hello(self, reason: str) -> None:
        try:
            await self.ws.send(protocol.encode(protocol.Error(reason)))
            await self.ws.close(CLOSE_POLICY, "hello expected first")
        except ConnectionClosed:
            pass

    async def _receive_loop(self) -> None:
        bad_in_a_row = 0
        async for data in self.ws:
            if not self._budget.take():
                if self._budget.flooding:
                    if isinstance(self.ws, GuardedConnection):
                        self.ws.guard.cut_off(self.ws.host)  # summed up, not a line each
                    else:
                        log.warning("device %s floods the server; closing", self.device_id)
                    await self.ws.close(CLOSE_POLICY, "too many messages")
                    return
                continue
            try:
                if isinstance(data, bytes):
                    raise ProtocolError("binary frames are not used; send JSON text")
                message = protocol.decode(data, "device")
                self._handle(message)
                bad_in_a_row = 0
            except ProtocolError as exc:
                bad_in_a_row += 1
                log.debug("device %s sent a bad message: %s", self.device_id, exc)
                if bad_in_a_row >= MAX_BAD_IN_A_ROW:
                    await self.ws.close(CLOSE_POLICY, "too many bad messages")
                    return
                self.send(protocol.Error(str(exc)))

    def _handle(self, message: protocol.Message) -> None:
        match message:
            case protocol.Status():
                self.status = message
                self.hub.changed()
            case protocol.Button(event="press"):
                self.hub.cycle_metric(self.device_id, self.button_needle)
            case protocol.Button():
                self._next_button_needle()
            case protocol.Ack(of=of, needle=needle):
                future = self._acks.pop((of, needle), None)
                if future is not None and not future.done():
                    future.set_result(None)
            case protocol.Error(reason=reason):
                log.warning("device %s reports: %r", self.device_id, reason)
            case protocol.UpdateStatus(state="confirmed" | "rolled_back"):
                self.hub.update_noted(self.device_id, message)
            case protocol.UpdateStatus():
                reply = self._update_reply
                if reply is not None and not reply.done():
                    reply.set_result(message)
            case protocol.DeviceHello():
                raise ProtocolError("'hello' was already sent")

    def _next_button_needle(self) -> None:
        """A long press: the button now acts on the next needle, which wiggles to say so."""
        if len(self.feeds) == 1:
            log.info("device %s: long press", self.device_id)
            return
        self.button_needle = self.button_needle % len(self.feeds) + 1
        log.info("device %s: the button now acts on needle %d", self.device_id, self.button_needle)
        self.send(protocol.Identify(self.button_needle))
        self.hub.changed()

    async def _send_loop(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._send_forever()

    async def _send_forever(self) -> None:
        self._beat()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._commands:
                await self._write(protocol.encode(self._commands.popleft()))
            for feed in self.feeds:
                if feed.due:
                    feed.due = False
                    await self._send_sample(feed)

    async def _write(self, text: str) -> None:
        self._sending_since = time.monotonic()
        await self.ws.send(text)
        self._sending_since = None

    def _beat(self) -> None:
        # a timer, not a wait_for per wake-up: a timed wait costs a task and a timer each time
        stalled = self._sending_since
        if stalled is not None and time.monotonic() - stalled >= SEND_STALL_S:
            log.warning("device %s stopped reading; dropping its link", self.device_id)
            if self.ws.transport is not None:
                self.ws.transport.abort()
            return
        due_in = HEARTBEAT_S
        for feed in self.feeds:
            if feed.reading is not None and not self.hub.sleeping:
                feed_due_in = feed.last_sent_at + HEARTBEAT_S - time.monotonic()
                if feed_due_in <= 0.01:
                    if feed.reading.available:
                        feed.due = True
                        self._wake.set()
                    else:
                        # nothing to show still beats: the device keeps the link, parked
                        self._park_unavailable(feed)
                    feed_due_in = HEARTBEAT_S
                due_in = min(due_in, feed_due_in)
        self._heartbeat = asyncio.get_running_loop().call_later(max(due_in, 0.01), self._beat)

    async def _send_sample(self, feed: Feed) -> None:
        reading = feed.reading
        # a sample due from before the PC began to sleep must not lift the parked needle
        if reading is None or reading.percent is None or self.hub.sleeping:
            return
        self.sent(feed, reading)
        await self._write(sample_text(reading, self.hub.label_of(reading.metric), feed.key))

    def _park_unavailable(self, feed: Feed) -> None:
        """Park a needle whose metric has nothing to show; the device keeps its name."""
        label = self.hub.label_of(feed.metric)
        key = self.needle_key(feed.number)
        self.send(protocol.Park(UNAVAILABLE, key, metric=feed.metric, label=label))
        feed.last_sent_at = time.monotonic()

    def sent(self, feed: Feed, reading: Reading) -> None:
        """This reading's sample went to needle `feed` (written here or by the hub)."""
        feed.last_sent = reading.percent
        feed.last_sent_at = time.monotonic()
        feed.parked = False
        feed.said_unavailable = False
        self.samples_sent += 1


def hello_calibrations(hello: protocol.DeviceHello) -> tuple[tuple[protocol.Point, ...], ...]:
    """The calibration each of the device's needles holds, needle 1 first."""
    return tuple(needle.calibration for needle in hello.needles)


def same_points(a: tuple[protocol.Point, ...], b: tuple[protocol.Point, ...]) -> bool:
    """True when two calibrations agree (to within what a float's text form can change)."""
    return len(a) == len(b) and all(
        abs(p - q) <= 1e-9 and abs(f - g) <= 1e-9 for (p, f), (q, g) in zip(a, b, strict=True)
    )


def sample_text(reading: Reading, label: str | None, needle: int | None = None) -> str:
    """The frame that shows an available reading on a needle (None: needle 1)."""
    assert reading.percent is not None
    raw = reading.raw if reading.raw is not None and math.isfinite(reading.raw) else None
    sample = protocol.Sample(
        reading.metric, min(100.0, max(0.0, reading.percent)), raw, reading.unit[:16], label, needle
    )
    return protocol.encode(sample)
