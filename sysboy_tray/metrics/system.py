"""CPU, RAM, network and disk through psutil."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import psutil

from sysboy_tray import netifs
from sysboy_tray.metrics import MIB, MetricSource, Reading, clamp_percent, used_of_total

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# when no network card says how fast its link is (Wi-Fi, VMs): 1 Gbit/s
DEFAULT_LINK_BPS = 1e9 / 8
LINK_RECHECK_S = 60.0
_LOOPBACK_NAME = re.compile(r"lo\d*|loopback.*", re.IGNORECASE)


class _PsutilSource:
    """What the psutil sources share: an OS read that fails blanks the value, not the app."""

    id: str
    label: str
    unit: str
    what: str

    def read(self) -> Reading:
        try:
            return self._read()
        except (OSError, RuntimeError) as exc:
            log.debug("%s read failed", self.id, exc_info=True)
            return Reading.unavailable(self.id, f"this PC did not give its {self.what} ({exc})")

    def _read(self) -> Reading:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Cpu(_PsutilSource):
    """CPU use across all cores since the previous read."""

    id, label, unit, what = "cpu", "CPU", "%", "CPU use"

    def __init__(self) -> None:
        # the first cpu_percent() call only sets the starting point
        psutil.cpu_percent(interval=None)
        self.cores = psutil.cpu_count() or 1

    def _read(self) -> Reading:
        load = float(psutil.cpu_percent(interval=None))
        detail = f"{load:.0f} % of {self.cores} cores"
        return Reading(self.id, clamp_percent(load), raw=load, detail=detail)


class Ram(_PsutilSource):
    """Memory in use (not available to new programs), percent of all RAM."""

    id, label, unit, what = "ram", "RAM", "MiB", "memory use"

    def _read(self) -> Reading:
        memory = psutil.virtual_memory()
        used = memory.total - memory.available
        return Reading(
            self.id,
            clamp_percent(float(memory.percent)),
            raw=round(used / MIB, 1),
            unit=self.unit,
            detail=used_of_total(used, memory.total),
        )


def _rate(value: float) -> str:
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B/s"


def _deltas(
    now: Mapping[str, Any], before: Mapping[str, Any], fields: Callable[[Any], float]
) -> dict[str, float]:
    """Per-device growth of a counter, for devices present both times (a new one is no spike)."""
    return {
        name: max(0.0, fields(counters) - fields(before[name]))
        for name, counters in now.items()
        if name in before
    }


class Network(_PsutilSource):
    """Traffic in the busier direction, percent of a full scale (default: the link speed)."""

    id, label, unit, what = "net", "Network", "B/s", "network traffic"

    def __init__(self, full_scale_bps: float | None = None, clock: Clock = time.monotonic):
        self.full_scale = full_scale_bps
        self._clock = clock
        self._link_bps = DEFAULT_LINK_BPS
        self._left_out: frozenset[str] = frozenset()
        self._checked_at = -LINK_RECHECK_S
        self._check_links()
        self._before = psutil.net_io_counters(pernic=True)
        self._before_at = clock()
        self._last: Reading | None = None

    def _check_links(self) -> None:
        """Learn the link speed and the adapters left out; cheap reads skip this."""
        self._checked_at = self._clock()
        stats = psutil.net_if_stats()
        loopbacks = {
            name
            for name, nic in stats.items()
            if _LOOPBACK_NAME.fullmatch(name) or "loopback" in getattr(nic, "flags", "")
        }
        # WSL, Hyper-V, container and VPN adapters carry the real adapter's traffic again
        found = netifs.adapters(stats=stats)
        virtual = netifs.virtual_adapter_names(found, netifs.default_route_address())
        self._left_out = frozenset(loopbacks | virtual)
        speeds = [
            nic.speed for name, nic in stats.items() if nic.isup and name not in self._left_out
        ]
        fastest = max((s for s in speeds if s > 0), default=0)
        self._link_bps = fastest * 1e6 / 8 if fastest else DEFAULT_LINK_BPS

    def _read(self) -> Reading:
        now = self._clock()
        if self.full_scale is None and now - self._checked_at >= LINK_RECHECK_S:
            self._check_links()
        counters = psutil.net_io_counters(pernic=True)
        seconds = now - self._before_at
        if seconds <= 0 and self._last is not None:
            return self._last
        seconds = max(seconds, 1e-3)
        down = _deltas(counters, self._before, lambda c: c.bytes_recv)
        up = _deltas(counters, self._before, lambda c: c.bytes_sent)
        self._before, self._before_at = counters, now
        real = [name for name in down if name not in self._left_out]
        down_bps = sum(down[name] for name in real) / seconds
        up_bps = sum(up[name] for name in real) / seconds
        busier = max(down_bps, up_bps)
        scale = self.full_scale or self._link_bps
        self._last = Reading(
            self.id,
            clamp_percent(busier / scale * 100.0),
            raw=round(busier, 1),
            unit=self.unit,
            detail=f"↓ {_rate(down_bps)} ↑ {_rate(up_bps)}",
        )
        return self._last


def _busy_ms(counters: Any) -> float:
    # busy_time exists on Linux and the BSDs; elsewhere read + write time is the closest
    busy = getattr(counters, "busy_time", None)
    return float(busy if busy is not None else counters.read_time + counters.write_time)


class Disk(_PsutilSource):
    """How busy the busiest disk was since the previous read, percent of the time."""

    id, label, unit, what = "disk", "Disk", "%", "disk activity"

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._before = psutil.disk_io_counters(perdisk=True) or {}
        self._before_at = clock()
        self._last: Reading | None = None

    def _read(self) -> Reading:
        now = self._clock()
        counters = psutil.disk_io_counters(perdisk=True) or {}
        if not counters:
            return Reading.unavailable(self.id, "this PC does not report disk activity")
        seconds = now - self._before_at
        if seconds <= 0 and self._last is not None:
            return self._last
        busy = _deltas(counters, self._before, _busy_ms)
        self._before, self._before_at = counters, now
        disk = max(busy, key=lambda name: busy[name], default=None)
        if disk is None or busy[disk] <= 0:
            self._last = Reading(self.id, 0.0, raw=0.0, detail="idle")
            return self._last
        percent = clamp_percent(busy[disk] / (max(seconds, 1e-3) * 1000.0) * 100.0)
        detail = f"{percent:.0f} % busy ({disk})"
        self._last = Reading(self.id, percent, raw=percent, detail=detail)
        return self._last


def sources(net_full_scale_bps: float | None) -> dict[str, MetricSource]:
    """The CPU, RAM, network and disk sources (CPU and counters primed now)."""
    return {
        "cpu": Cpu(),
        "ram": Ram(),
        "net": Network(net_full_scale_bps),
        "disk": Disk(),
    }
