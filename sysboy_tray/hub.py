"""The hub: latest readings, which device shows which metric, and who gets told what.

Everything here runs on the event loop's thread; other threads reach it through
`App` (app.py), which hands work over with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from websockets.asyncio.server import broadcast

from sysboy_tray import protocol
from sysboy_tray.config import SettingsStore
from sysboy_tray.errors import ConfigError, ControlError
from sysboy_tray.metrics import MetricSource, Reading
from sysboy_tray.pairing import Trust
from sysboy_tray.session import sample_text

if TYPE_CHECKING:
    from sysboy_tray.session import DeviceSession, Feed

log = logging.getLogger(__name__)

Listener = Callable[[], None]
MAX_EXPIRED = 8  # expired pushed metrics kept for their labels


class CustomMetric:
    """A metric pushed by a script (`sysboy push`), expiring if not pushed again."""

    def __init__(self, metric: str, label: str, unit: str) -> None:
        self.info = protocol.MetricInfo(metric, label, unit)
        self.expiry: asyncio.TimerHandle | None = None
        # not pushed again in time: kept, with its label, until pushed again or crowded out
        self.expired = False


class Hub:
    """Latest readings and connected devices; decides what each device is sent."""

    def __init__(
        self,
        store: SettingsStore,
        sources: Mapping[str, MetricSource],
        want: Callable[[set[str]], None],
        server_name: str,
        trust: Trust,
        *,
        known: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        self.trust = trust  # this PC's id, the pairing keys, the meters waiting to pair
        # whether a device id may have settings saved for it (by default: the devices the
        # user already set up; with pairing, the paired ones); others' button presses last
        # only as long as their link
        self.known = known or (lambda device_id: device_id in store.settings.devices)
        self._unsaved: dict[tuple[str, int], str] = {}
        self.sources = dict(sources)
        self.server_name = server_name
        self._want = want
        self.readings: dict[str, Reading] = {}
        self.sessions: dict[str, DeviceSession] = {}
        self.custom: dict[str, CustomMetric] = {}
        self.listeners: list[Listener] = []
        # the PC is about to sleep: the needles rest and no sample goes out until it wakes
        self.sleeping = False
        # device id -> what its firmware said last after an update (confirmed, rolled back)
        self.update_notes: dict[str, protocol.UpdateStatus] = {}
        # told of each such note as it comes (the app tells the user of a rollback)
        self.on_update_note: Callable[[str, protocol.UpdateStatus], None] | None = None

    # -- metrics ----------------------------------------------------------------

    @property
    def global_metric(self) -> str:
        return self.store.settings.metric

    def metric_infos(self) -> tuple[protocol.MetricInfo, ...]:
        """Every metric a device may show: the built-in ones, then pushed ones."""
        infos = [protocol.MetricInfo(s.id, s.label, s.unit) for s in self.sources.values()]
        infos.extend(c.info for c in self.custom.values())
        return tuple(infos[: protocol.MAX_METRICS_IN_HELLO])

    def label_of(self, metric: str) -> str | None:
        source = self.sources.get(metric)
        if source is not None:
            return source.label
        custom = self.custom.get(metric)
        return custom.info.label if custom is not None else None

    def is_metric(self, metric: str) -> bool:
        return metric in self.sources or metric in self.custom

    def metric_for(self, device_id: str, needle: int = 1) -> str:
        """The metric a device's needle shows: its own choice, else the global one."""
        unsaved = self._unsaved.get((device_id, needle))
        if unsaved is not None:
            return unsaved
        own = self.store.settings.devices.get(device_id)
        chosen = own.needle(needle).metric if own is not None else None
        return chosen or self.global_metric

    def wanted(self) -> set[str]:
        """Metrics someone displays: each needle's, and the global one (the tray icon)."""
        shown = {m for session in self.sessions.values() for m in session.metrics}
        return {self.global_metric} | shown

    def refresh_wanted(self) -> None:
        self._want(self.wanted())

    def publish(self, readings: Mapping[str, Reading]) -> None:
        """New readings arrived: remember them and offer each device its own."""
        self.readings.update(readings)
        for metric, reading in readings.items():
            # needle number -> the needles of that number showing this metric, ready now
            takers: dict[int, list[tuple[DeviceSession, Feed]]] = {}
            for session in list(self.sessions.values()):
                for feed in session.feeds:
                    if feed.metric == metric and session.take(feed, reading):
                        takers.setdefault(feed.number, []).append((session, feed))
            for group in takers.values():
                # one encoded frame written to every needle of this number showing this metric
                text = sample_text(reading, self.label_of(metric), group[0][1].key)
                broadcast([session.ws for session, _ in group], text)
                for session, feed in group:
                    session.sent(feed, reading)
        self.changed()

    def set_global_metric(self, metric: str) -> None:
        """Show `metric` on the tray and on every device without a choice of its own."""
        self._check_metric(metric)
        self.store.update(metric=metric)
        self._metric_changed()

    def set_device_metric(self, device_id: str, metric: str | None, needle: int = 1) -> None:
        """Show `metric` on one needle of one device (None: follow the global metric).

        Raises:
            ControlError: no such metric, or the connected device has no such needle.
        """
        if metric is not None:
            self._check_metric(metric)
        session = self.sessions.get(device_id)
        if session is not None:
            session.needle_key(needle)  # refuses a needle the meter does not have
        try:
            self.store.update_device(device_id, needle, metric=metric)
            self._unsaved.pop((device_id, needle), None)
        except ConfigError as exc:
            raise ControlError(str(exc)) from None
        self._metric_changed()

    def cycle_metric(self, device_id: str, needle: int = 1) -> None:
        """The device's button was pressed: move that needle to the next available metric."""
        order = [m.id for m in self.metric_infos()]
        current = self.metric_for(device_id, needle)
        start = order.index(current) if current in order else -1
        for step in range(1, len(order) + 1):
            candidate = order[(start + step) % len(order)]
            reading = self.readings.get(candidate)
            pushed = candidate in self.custom and not self.custom[candidate].expired
            if pushed or reading is None or reading.available:
                if self.known(device_id):
                    self.set_device_metric(device_id, candidate, needle)
                else:
                    self._show_unsaved(device_id, needle, candidate)
                return

    def _show_unsaved(self, device_id: str, needle: int, metric: str) -> None:
        """A choice made on a device the PC does not know: kept while it is linked only."""
        session = self.sessions.get(device_id)
        if session is None:
            return
        session.needle_key(needle)  # refuses a needle the meter does not have
        self._unsaved[(device_id, needle)] = metric
        self._metric_changed()

    def known_devices(self) -> dict[str, str]:
        """Every device linked now or remembered: id -> its name (or its id)."""
        known = {
            device_id: saved.name or device_id
            for device_id, saved in self.store.settings.devices.items()
        }
        for device_id, session in self.sessions.items():
            hello = session.hello
            saved = self.store.settings.devices.get(device_id)
            # the name the user gave it on this PC, else the device's own, else its id
            known[device_id] = (
                (saved.name if saved is not None else None)
                or (hello.name if hello is not None else None)
                or device_id
            )
        return known

    def check_device(self, device_id: str) -> None:
        """Raise ControlError, listing the known devices, unless `device_id` is one."""
        if device_id in self.sessions or device_id in self.store.settings.devices:
            return
        known = self.known_devices()
        if not known:
            raise ControlError(
                f"there is no device '{device_id}': no meter has linked to this PC yet"
            )
        listed = ", ".join(
            device if name == device else f"{device} ({name})"
            for device, name in sorted(known.items())
        )
        raise ControlError(f"there is no device '{device_id}' (known: {listed})")

    def _check_metric(self, metric: str) -> None:
        if not self.is_metric(metric):
            known = ", ".join(m.id for m in self.metric_infos())
            raise ControlError(f"there is no metric '{metric}' (known: {known})")

    def _metric_changed(self) -> None:
        for device_id, session in list(self.sessions.items()):
            for feed in session.feeds:
                metric = self.metric_for(device_id, feed.number)
                if metric != feed.metric:
                    session.show(feed.number, metric, self.readings.get(metric))
        self.refresh_wanted()
        self.changed()

    # -- pushed metrics -----------------------------------------------------------

    def push(self, metric: str, value: float, unit: str = "", label: str = "") -> None:
        """A script's own value for `metric` (percent 0..100), shown like a built-in."""
        if metric in self.sources or not protocol.is_metric_id(metric):
            raise ControlError(f"'{metric}' cannot be used as a pushed metric name")
        if not math.isfinite(value):
            raise ControlError("the pushed value must be a finite number")
        if len(unit) > 16 or len(label) > 32:
            raise ControlError("unit is at most 16 and label at most 32 characters")
        custom = self.custom.get(metric)
        if custom is None:
            custom = self.custom[metric] = CustomMetric(metric, label or metric, unit or "%")
        elif label or unit:
            custom.info = protocol.MetricInfo(
                metric, label or custom.info.label, unit or custom.info.unit
            )
        if custom.expiry is not None:
            custom.expiry.cancel()
        custom.expired = False
        loop = asyncio.get_running_loop()
        custom.expiry = loop.call_later(self.store.settings.custom_ttl_s, self._expire, metric)
        percent = min(100.0, max(0.0, value))
        self.publish({metric: Reading(metric, percent, value, custom.info.unit, f"{value:g}")})

    def _expire(self, metric: str) -> None:
        custom = self.custom.get(metric)
        if custom is None:
            return
        log.info("pushed metric %s expired: not pushed again in time", metric)
        custom.expired = True
        custom.expiry = None
        expired = [m for m, c in self.custom.items() if c.expired]
        for old in expired[:-MAX_EXPIRED]:  # the oldest first: dicts keep insertion order
            if old not in self.wanted():
                del self.custom[old]
        self.publish({metric: Reading.unavailable(metric, "not pushed again in time")})

    # -- devices ----------------------------------------------------------------

    def update_noted(self, device_id: str, status: protocol.UpdateStatus) -> None:
        """A meter said how a new firmware version fared: confirmed, or rolled back."""
        if status.state == "rolled_back":
            log.warning(
                "device %s rolled back from firmware %r: %r",
                device_id,
                status.version,
                status.reason,
            )
        else:
            log.info("device %s runs firmware %r now", device_id, status.version)
        self.update_notes[device_id] = status
        if self.on_update_note is not None:
            self.on_update_note(device_id, status)
        self.changed()

    def attach(self, session: DeviceSession) -> None:
        old = self.sessions.get(session.device_id)
        if old is not None and old is not session:
            log.info("device %s connected again; dropping its old link", session.device_id)
            old.replaced()
        self.sessions[session.device_id] = session
        self.refresh_wanted()
        self.changed()

    def detach(self, session: DeviceSession) -> None:
        if self.sessions.get(session.device_id) is session:
            del self.sessions[session.device_id]
            for key in [k for k in self._unsaved if k[0] == session.device_id]:
                del self._unsaved[key]
            self.refresh_wanted()
            self.changed()

    def session(self, device_id: str | None) -> DeviceSession:
        """The connected device with this id (or the only one when None).

        Raises:
            ControlError: no such device, or several and none named.
        """
        if device_id is None:
            if len(self.sessions) == 1:
                return next(iter(self.sessions.values()))
            if not self.sessions:
                raise ControlError("no device is connected")
            raise ControlError("several devices are connected; name one")
        try:
            return self.sessions[device_id]
        except KeyError:
            raise ControlError(f"device '{device_id}' is not connected") from None

    def park_all(self, reason: str) -> None:
        """Send every device to rest (PC sleeping or quitting)."""
        for session in list(self.sessions.values()):
            session.send(protocol.Park(reason))

    async def park_for_sleep(self, timeout: float) -> None:
        """Park every needle now and hold the samples back until `wake()`."""
        self.sleeping = True
        sessions = list(self.sessions.values())
        await asyncio.gather(*(s.park_now("sleep", timeout) for s in sessions))

    def wake(self) -> None:
        """The PC is awake again: every device gets its value at once."""
        self.sleeping = False
        for session in list(self.sessions.values()):
            for metric in set(session.metrics):
                reading = self.readings.get(metric)
                if reading is not None:
                    session.offer(reading)

    def changed(self) -> None:
        """Tell the listeners (the tray) that something they show may have changed."""
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:
                log.exception("a change listener failed")
