"""The sampler thread: reads the metrics someone is displaying, at a steady interval."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from sysboy_tray.config import check_interval
from sysboy_tray.metrics import MetricSource, Reading

log = logging.getLogger(__name__)

Publish = Callable[[dict[str, Reading]], None]


class Sampler:
    """Reads wanted metrics every `interval` seconds on its own thread and publishes them.

    Blocking reads (NVML, sysfs, psutil) happen here, never on the event loop.
    `publish` is called from this thread; it must hand the readings over quickly
    (e.g. `loop.call_soon_threadsafe`).
    """

    def __init__(self, sources: Mapping[str, MetricSource], interval: float, publish: Publish):
        self._sources = dict(sources)
        self._interval = check_interval(interval)
        self._publish = publish
        self._wanted: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # what the thread read last round; at start every source may have been read
        self._reading: frozenset[str] = frozenset(self._sources)
        # sources to read instead of those with the same ids, from the next round on
        self._replacing: dict[str, MetricSource] = {}
        self.rounds = 0

    @property
    def interval(self) -> float:
        return self._interval

    def set_interval(self, seconds: float) -> None:
        """Change the update interval (0.1 to 60 s); takes effect at once."""
        self._interval = check_interval(seconds)
        self._wake.set()

    def read_now(self) -> None:
        """Start the next round at once instead of at the end of the interval."""
        self._wake.set()

    def want(self, metrics: set[str] | frozenset[str]) -> None:
        """Read only these metrics from now on; a new one is read at once."""
        wanted = frozenset(m for m in metrics if m in self._sources)
        with self._lock:
            added = wanted - self._wanted
            self._wanted = wanted
        if added:
            self._wake.set()

    def replace(self, sources: Mapping[str, MetricSource]) -> None:
        """Read these sources instead of those with the same ids, from the next round on.

        The old ones are closed by the sampler thread, so no read is cut short.
        """
        with self._lock:
            self._replacing.update(sources)
        if self._thread is None or not self._thread.is_alive():
            self._swap()
        self._wake.set()

    def _swap(self) -> None:
        with self._lock:
            replacing, self._replacing = self._replacing, {}
        for metric, source in replacing.items():
            old = self._sources.get(metric)
            self._sources[metric] = source
            if old is not None and old is not source:
                try:
                    old.close()
                except Exception:
                    log.exception("closing metric %s failed", metric)

    def read(self, metrics: frozenset[str] | set[str]) -> dict[str, Reading]:
        """Read the given metrics now, on the calling thread."""
        readings = {}
        for metric in metrics:
            source = self._sources.get(metric)
            if source is None:
                continue
            try:
                readings[metric] = source.read()
            except Exception as exc:  # a source must not raise; if one does, blank its value
                log.exception("metric %s failed", metric)
                readings[metric] = Reading.unavailable(metric, f"reading failed: {exc}")
        return readings

    def _rest(self, metrics: frozenset[str]) -> None:
        """Tell sources no longer shown that they may let their device sleep."""
        for metric in metrics:
            # optional: only sources that hold hardware awake (NVML) have it
            idle = getattr(self._sources.get(metric), "idle", None)
            if idle is None:
                continue
            try:
                idle()
            except Exception:
                log.exception("metric %s could not rest", metric)

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="sysboy-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and wait for it (at most `timeout` seconds)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stopping.is_set():
            self._swap()
            with self._lock:
                wanted = self._wanted
            if wanted != self._reading:
                self._rest(self._reading - wanted)
                self._reading = wanted
            if wanted:
                readings = self.read(wanted)
                self.rounds += 1
                try:
                    self._publish(readings)
                except RuntimeError:  # the loop closed under us: we are shutting down
                    return
            next_at += self._interval
            now = time.monotonic()
            if next_at < now:  # fell behind (sleep, suspend): do not catch up in a burst
                next_at = now + self._interval
            self._wake.wait(next_at - now)
            if self._wake.is_set():
                self._wake.clear()
                next_at = time.monotonic()
