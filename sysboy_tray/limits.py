"""What one peer may cost the server: connections per address and in all, frames per second.

Connections are counted at accept, before a byte of the WebSocket handshake is read,
so a peer that opens thousands of idle or half-open sockets holds at most
`PER_ADDRESS` of them; the rest are closed at once. Each ping and pong a connection
sends takes a token from that connection's `FrameBudget`, and so does each message
of a meter (session.py), so pings cannot be used to flood past the rate.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import sys
import time
from typing import Any, ClassVar, cast

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode, Frame, Opcode

log = logging.getLogger(__name__)

# a meter holds one connection (two while it reconnects); a PC running a few simulated
# meters, the CLI and the calibration window from one address stays well below this
PER_ADDRESS = 16
# far more meters than a desk holds, and far below a desktop's 1,024 open files
TOTAL = 512
# open files kept free for everything else the app opens (settings, logs, mDNS, NVML)
FILE_RESERVE = 64
# asyncio accepts up to this many sockets each turn of the loop, and a refused one is
# closed three or four turns later: that many batches must fit under the open-file limit
ACCEPT_BATCH = 64
ACCEPTS_IN_FLIGHT = 4 * ACCEPT_BATCH
# the kernel's queue of connections not yet accepted: deep, so that a meter's SYN is
# not dropped (and retried only 1, 3, 7 s later) while a crowd waits to be refused
LISTEN_QUEUE = 4096
# refused peers are logged at most this often, with counts, so an attack cannot fill the log
REFUSED_LOG_EVERY_S = 60.0
# a device sends a heartbeat every 10 s and a button now and then; 20 frames a second
# with a burst of 40 is far above that, and caps what a flood can cost us
RATE_PER_S = 20.0
RATE_BURST = 40.0
# frames past the rate are dropped unread; a peer that keeps flooding until this many
# were dropped (without slowing down enough to refill its burst) is cut off with 1008
MAX_DROPPED = 100
# bytes parsed between two looks at the budget: a burst of tiny frames (a 6-byte ping
# each) read in one go cannot keep the loop busy for long
PARSE_SLICE = 4096


def raise_open_file_limit() -> int | None:
    """Raise this process's soft open-file limit to its hard limit; return the soft limit.

    None where there is no such limit to raise (Windows).
    """
    if sys.platform == "win32":  # sockets are handles there, not counted against a limit
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # macOS refuses an unlimited soft limit; 64 Ki files are more than the caps need anyway
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, wanted, exc)
    return None if soft == resource.RLIM_INFINITY else soft


def deepen_listen_queue(listening: socket.socket | Any) -> None:
    """Give a listening socket the deep kernel queue, past asyncio's accept batch."""
    try:
        # a second handle on the same socket: asyncio's wrapper hides listen()
        with socket.fromfd(listening.fileno(), listening.family, listening.type) as handle:
            handle.listen(LISTEN_QUEUE)
    except (OSError, AttributeError, ValueError) as exc:
        log.debug("kept the default listen queue: %s", exc)


def total_for(open_files: int | None) -> int:
    """The cap on connections in all, below the process's open-file limit."""
    if open_files is None:
        return TOTAL
    return max(PER_ADDRESS, min(TOTAL, open_files - FILE_RESERVE - ACCEPTS_IN_FLIGHT))


def host_of(peer: Any) -> str:
    """The address part of a socket's peer name ('?' when there is none)."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "?"


class ConnectionGuard:
    """Counts open connections per address and in all; refuses past the caps (loop thread)."""

    def __init__(self, per_address: int = PER_ADDRESS, total: int = TOTAL) -> None:
        self.per_address = per_address
        self.total = total
        self.open: collections.Counter[str] = collections.Counter()
        self.open_total = 0
        self.refused_total = 0
        self.cut_total = 0
        self._refused: collections.Counter[str] = collections.Counter()
        self._cut: collections.Counter[str] = collections.Counter()
        self._logged_at = -REFUSED_LOG_EVERY_S
        self._report: asyncio.TimerHandle | None = None

    def admit(self, host: str) -> bool:
        """Count a new connection from `host`; False (and nothing counted) past a cap."""
        if self.open[host] >= self.per_address or self.open_total >= self.total:
            self.refused_total += 1
            self._note(self._refused, host)
            return False
        self.open[host] += 1
        self.open_total += 1
        return True

    def release(self, host: str) -> None:
        """An admitted connection from `host` ended."""
        self.open[host] -= 1
        if self.open[host] <= 0:
            del self.open[host]
        self.open_total -= 1

    def cut_off(self, host: str) -> None:
        """A connection from `host` flooded the server and was cut off."""
        self.cut_total += 1
        self._note(self._cut, host)

    def _note(self, counts: collections.Counter[str], host: str) -> None:
        counts[host] += 1
        if self._report is not None:
            return
        wait = self._logged_at + REFUSED_LOG_EVERY_S - time.monotonic()
        if wait <= 0:
            self.report()
        else:
            self._report = asyncio.get_running_loop().call_later(wait, self.report)

    def report(self) -> None:
        """Log the refusals and cut-offs counted since the last report, a line each."""
        self._report = None
        if not self._refused and not self._cut:
            return
        self._logged_at = time.monotonic()
        if self._refused:
            log.warning(
                "refused %d connections (%s): at most %d per address and %d in all, "
                "%d open now; logged at most every %d s",
                sum(self._refused.values()),
                _top(self._refused),
                self.per_address,
                self.total,
                self.open_total,
                REFUSED_LOG_EVERY_S,
            )
        if self._cut:
            log.warning(
                "cut off %d connections that flooded the server with frames (%s)",
                sum(self._cut.values()),
                _top(self._cut),
            )
        self._refused.clear()
        self._cut.clear()

    def close(self) -> None:
        """Log what is still counted and stop the report timer."""
        if self._report is not None:
            self._report.cancel()
        self.report()


def _top(counts: collections.Counter[str]) -> str:
    """The addresses that cost most, with counts (network text: shown with repr)."""
    text = ", ".join(f"{count} from {host!r}" for host, count in counts.most_common(5))
    others = len(counts) - 5
    return text + (f" and from {others} other addresses" if others > 0 else "")


class FrameBudget:
    """A token bucket of frames per second, with a count of frames dropped in a row."""

    def __init__(self, rate: float = RATE_PER_S, burst: float = RATE_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()
        self.dropped = 0

    def take(self) -> bool:
        """True when a frame may be handled; False (and one more dropped) when over the rate."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= self.burst:  # slowed down enough: the flood is over
            self.dropped = 0
        if self._tokens < 1.0:
            self.dropped += 1
            return False
        self._tokens -= 1.0
        return True

    @property
    def flooding(self) -> bool:
        """Dropped so many frames in a row that the peer should be cut off."""
        return self.dropped >= MAX_DROPPED


class GuardedConnection(ServerConnection):
    """A server connection counted by a `ConnectionGuard`, whose control frames cost budget.

    Use `guarded(guard)` to get the class to hand to `websockets.serve`.
    """

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = FrameBudget()
        self.host = "?"
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.host = host_of(transport.get_extra_info("peername"))
        if not self.guard.admit(self.host):
            # no handler task, no buffers: the socket is closed before it costs anything
            cast(asyncio.Transport, transport).abort()
            return
        self._admitted = True
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self.guard.release(self.host)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        for start in range(0, len(data), PARSE_SLICE):
            if self.budget.flooding:
                return  # cut off: the rest is not even parsed
            super().data_received(data[start : start + PARSE_SLICE])

    def eof_received(self) -> None:
        if self._admitted:
            super().eof_received()

    def process_event(self, event: Any) -> None:
        control = isinstance(event, Frame) and event.opcode in (Opcode.PING, Opcode.PONG)
        if control and not self.budget.take():
            if self.budget.flooding:
                self.cut_off()
            return  # over the rate: dropped (a ping was already answered by the parser)
        super().process_event(event)

    def cut_off(self) -> None:
        """Close with 1008 at once: the peer floods the server."""
        self.guard.cut_off(self.host)
        try:
            self.protocol.fail(CloseCode.POLICY_VIOLATION, "too many frames")
            self.send_data()
        except Exception:  # already closing: the abort below is all that is left to do
            pass
        self.transport.abort()


def guarded(guard: ConnectionGuard) -> type[GuardedConnection]:
    """A `GuardedConnection` class bound to `guard`, for `serve(create_connection=...)`."""

    class Guarded(GuardedConnection):
        pass

    Guarded.guard = guard
    return Guarded
