"""A private D-Bus daemon and a small logind on it: the system services sleep needs.

The bus is a real `dbus-daemon` with a session-style policy (anyone may own any
name). The fake logind owns `org.freedesktop.login1`, answers `Inhibit` with the
write end of a pipe, as the real one does, and sees the lock released when the
read end reaches end of file.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jeepney import (
    DBusAddress,
    HeaderFields,
    MatchRule,
    new_error,
    new_method_return,
    new_signal,
)
from jeepney.bus_messages import message_bus
from jeepney.io.threading import DBusRouter, Proxy, open_dbus_router

from tests.conftest import scaled
from tests.debian import need

LOGIND = "org.freedesktop.login1"
MANAGER = DBusAddress("/org/freedesktop/login1", LOGIND, "org.freedesktop.login1.Manager")

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@contextlib.contextmanager
def private_bus(folder: Path) -> Iterator[str]:
    """Run a dbus-daemon of our own; yield its address."""
    need("dbus-daemon")
    config = folder / "bus.conf"
    config.write_text(BUS_CONFIG.format(socket=folder / "bus"))
    errors = (folder / "bus.log").open("w")  # it complains about fd limits it may not raise
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    errors.close()
    try:
        assert daemon.stdout is not None
        ready, _, _ = select.select([daemon.stdout], [], [], scaled(10))
        assert ready, f"dbus-daemon did not start: {(folder / 'bus.log').read_text()}"
        address = daemon.stdout.readline().strip()
        assert address.startswith("unix:"), address
        yield address
    finally:
        daemon.terminate()
        daemon.wait(scaled(5))


class Inhibitor:
    """One delay lock handed out: the read end of the pipe whose write end the app holds."""

    def __init__(self, args: tuple[Any, ...], read_end: int) -> None:
        self.args = args
        self._read_end = read_end
        self.released = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        # end of file: every copy of the write end was closed
        while os.read(self._read_end, 64):
            pass
        os.close(self._read_end)
        self.released.set()


class FakeLogind:
    """Owns org.freedesktop.login1 on a bus, hands out delay locks, emits PrepareForSleep."""

    def __init__(self, address: str) -> None:
        self.inhibitors: list[Inhibitor] = []
        self._changed = threading.Condition()
        self._stack = contextlib.ExitStack()
        self.router: DBusRouter = self._stack.enter_context(
            open_dbus_router(bus=address, enable_fds=True)
        )
        calls: queue.Queue[Any] = queue.Queue()
        rule = MatchRule(type="method_call", interface=MANAGER.interface)
        self._stack.enter_context(self.router.filter(rule, queue=calls))
        (owned,) = Proxy(message_bus, self.router, timeout=scaled(5)).RequestName(LOGIND)
        assert owned == 1, "another logind owns the name"
        self._calls = calls
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            if call.header.fields.get(HeaderFields.member) != "Inhibit":
                self.router.send(new_error(call, "org.freedesktop.DBus.Error.UnknownMethod"))
                continue
            read_end, write_end = os.pipe()
            self.router.send(new_method_return(call, "h", (write_end,)))
            os.close(write_end)  # the bus made its own copy on the way out
            with self._changed:
                self.inhibitors.append(Inhibitor(tuple(call.body), read_end))
                self._changed.notify_all()

    def wait_for_inhibitors(self, count: int, timeout: float = 5.0) -> Inhibitor:
        """Wait until `count` locks were handed out; return the latest."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.inhibitors) >= count, scaled(timeout)):
                raise AssertionError(f"{len(self.inhibitors)} delay locks taken, not {count}")
            return self.inhibitors[-1]

    def prepare_for_sleep(self, sleeping: bool) -> None:
        self.router.send(new_signal(MANAGER, "PrepareForSleep", "b", (sleeping,)))

    def close(self) -> None:
        self._calls.put(None)
        self._stack.close()

    def __enter__(self) -> FakeLogind:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
