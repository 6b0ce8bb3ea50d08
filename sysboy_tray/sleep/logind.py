"""Linux: logind's PrepareForSleep signal on the system bus, with a delay lock.

logind sends `PrepareForSleep(true)` before a suspend and `PrepareForSleep(false)`
after it. It only waits for the apps that hold a *delay* inhibitor lock (a file
descriptor they close when ready, at most InhibitDelayMaxSec, 5 s by default), so
the watcher takes one at start, closes it once the needles are parked, and takes a
new one after the wake. Where there is no system bus or no logind (containers, WSL)
it says so once in the log and does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

from jeepney import DBusAddress, DBusErrorResponse, MatchRule, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, Proxy, open_dbus_connection
from jeepney.wrappers import unwrap_msg

from sysboy_tray.sleep import Callback

log = logging.getLogger(__name__)

LOGIND = "org.freedesktop.login1"
MANAGER = DBusAddress("/org/freedesktop/login1", LOGIND, "org.freedesktop.login1.Manager")
WHY = "park the meter needles"
CALL_TIMEOUT_S = 2.0


def _signal_rule(sender: str | None = None) -> Any:
    return MatchRule(
        type="signal",
        sender=sender,
        interface=MANAGER.interface,
        member="PrepareForSleep",
        path=MANAGER.object_path,
    )


class LogindWatcher:
    """Watches logind on the system bus from a daemon thread of its own."""

    def __init__(self, bus: str = "SYSTEM") -> None:
        self._bus = bus
        self._conn: DBusConnection | None = None
        self._lock_fd: Any = None  # the delay inhibitor: closing it lets the PC sleep
        self._guard = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self, on_sleep: Callback, on_wake: Callback) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(on_sleep, on_wake), name="sysboy-sleep", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._guard:
            self._stopping = True
            conn = self._conn
        if conn is not None:
            # wakes the thread's blocking read with an end of stream
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, on_sleep: Callback, on_wake: Callback) -> None:
        try:
            conn = open_dbus_connection(bus=self._bus, enable_fds=True)
        except Exception as exc:  # no bus at all: the app works on without it
            log.info("no system bus (%s); the needles will not park when the PC sleeps", exc)
            return
        with self._guard:
            if self._stopping:
                conn.close()
                return
            self._conn = conn
        try:
            self._watch(conn, on_sleep, on_wake)
        except OSError as exc:
            with self._guard:
                stopping = self._stopping
            if not stopping:
                log.warning("lost the system bus (%s); sleep is no longer watched", exc)
        except Exception:
            log.exception("watching for sleep failed")
        finally:
            self._release()
            conn.close()

    def _watch(self, conn: DBusConnection, on_sleep: Callback, on_wake: Callback) -> None:
        bus = Proxy(message_bus, conn, timeout=CALL_TIMEOUT_S)
        (has_logind,) = bus.NameHasOwner(LOGIND)
        if not has_logind:
            log.info("no logind on the system bus; the needles will not park when the PC sleeps")
            return
        # the bus routes only logind's own signals to us; locally the sender is its
        # unique name, so the filter here leaves the sender out
        bus.AddMatch(_signal_rule(sender=LOGIND))
        with conn.filter(_signal_rule(), bufsize=16) as signals:
            self._take_lock(conn)
            log.info("watching logind: the needles park before the PC sleeps")
            while True:
                message = conn.recv_until_filtered(signals)
                if message.body == (True,):
                    self._sleep(on_sleep)
                elif message.body == (False,):
                    self._take_lock(conn)
                    self._call(on_wake)

    def _sleep(self, on_sleep: Callback) -> None:
        try:
            self._call(on_sleep)
        finally:
            self._release()

    def _take_lock(self, conn: DBusConnection) -> None:
        if self._lock_fd is not None:
            return
        call = new_method_call(MANAGER, "Inhibit", "ssss", ("sleep", "Sysboy", WHY, "delay"))
        try:
            (fd,) = unwrap_msg(conn.send_and_get_reply(call, timeout=CALL_TIMEOUT_S))
        except (DBusErrorResponse, TimeoutError) as exc:
            log.warning("logind will not wait for the needles to park: %s", exc)
            return
        self._lock_fd = fd

    def _release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            fd.close()

    @staticmethod
    def _call(callback: Callback) -> None:
        try:
            callback()
        except Exception:
            log.exception("the sleep callback failed")
