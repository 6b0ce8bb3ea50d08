"""Metric sources: what the needle can show, and the one place that picks them.

Every source has the same small API (`MetricSource`). `read()` may block (NVML,
sysfs, psutil) and so is only ever called from the sampler thread, never from
the event loop. It never raises: a failed read returns an unavailable
`Reading` whose `reason` a user understands.

`build_sources()` is the only code that chooses a backend: NVIDIA (NVML) when it
has a GPU, else AMD (sysfs, Linux), else a source that says why there is none.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sysboy_tray.config import Settings

log = logging.getLogger(__name__)

GIB = 1024**3
MIB = 1024**2
DRM_ROOT = Path("/sys/class/drm")

# id -> (label, unit of `Reading.raw`), in the order menus list them
METRICS: dict[str, tuple[str, str]] = {
    "vram": ("VRAM", "MiB"),
    "gpu": ("GPU load", "%"),
    "gpu_temp": ("GPU temp", "°C"),
    "cpu": ("CPU", "%"),
    "ram": ("RAM", "MiB"),
    "net": ("Network", "B/s"),
    "disk": ("Disk", "%"),
}
GPU_METRICS = ("vram", "gpu", "gpu_temp")
NO_GPU = "no GPU found"


@dataclass(frozen=True)
class Reading:
    """One read of one metric: needle percent, or None with the reason why not."""

    metric: str
    percent: float | None
    raw: float | None = None
    unit: str = "%"
    detail: str | None = None
    reason: str | None = None
    # a few words for a menu item ("no GPU found"); the reason is the full sentence
    short: str | None = None

    @property
    def available(self) -> bool:
        return self.percent is not None

    @classmethod
    def unavailable(cls, metric: str, reason: str, short: str | None = None) -> Reading:
        return cls(metric, None, reason=reason, short=short)


class MetricSource(Protocol):
    """A metric the needle can show."""

    id: str
    label: str
    unit: str

    def read(self) -> Reading:
        """Read the metric now (may block; never raises)."""
        ...

    def close(self) -> None:
        """Release what the source holds (NVML handle, files)."""
        ...


@dataclass(frozen=True)
class GpuInfo:
    """One GPU, as the tray's GPU menu lists it; `index` is what the `gpu` setting holds."""

    index: int
    name: str
    total_bytes: int
    vendor: str


def clamp_percent(value: float) -> float:
    """The needle position: `value` held within 0..100."""
    return min(100.0, max(0.0, value))


def over_range(value: float, low: float, high: float) -> float:
    """Where `value` sits between `low` (0 %) and `high` (100 %)."""
    return clamp_percent((value - low) / (high - low) * 100.0)


def used_of_total(used: float, total: float) -> str:
    """The tooltip text for a memory metric, e.g. `9.7 / 16.0 GiB`."""
    return f"{used / GIB:.1f} / {total / GIB:.1f} GiB"


def vram_reading(used: float, total: float, gpu_name: str) -> Reading:
    """VRAM in use as the needle shows it: percent of the card, MiB, `9.7 / 16.0 GiB`."""
    if total <= 0:
        return Reading.unavailable("vram", f"{gpu_name} reports no memory")
    return Reading(
        "vram",
        clamp_percent(used / total * 100.0),
        raw=round(used / MIB, 1),
        unit=METRICS["vram"][1],
        detail=used_of_total(used, total),
    )


def load_reading(load: float) -> Reading:
    """GPU load in percent, as the needle shows it."""
    return Reading("gpu", clamp_percent(load), raw=load, unit="%", detail=f"{load:.0f} %")


def temperature_reading(degrees: float, low: float, high: float) -> Reading:
    """GPU temperature, the needle spanning `low` to `high` degrees."""
    return Reading(
        "gpu_temp",
        over_range(degrees, low, high),
        raw=degrees,
        unit=METRICS["gpu_temp"][1],
        detail=f"{degrees:.0f} °C",
    )


class GuardedGpuSource:
    """What every GPU source shares: a failed read blanks one value, with the reason in
    words, logged once per outage rather than once per tick."""

    id: str
    label: str
    unit: str
    what: str  # what the read asks the GPU for, e.g. "memory use"
    errors: tuple[type[Exception], ...]

    def __init__(self) -> None:
        self._failing = False

    def read(self) -> Reading:
        try:
            reading = self._read()
        except self.errors as exc:
            reason = self._reason(exc)
            if not self._failing:
                log.warning("%s unavailable: %s", self.id, reason)
            self._failing = True
            return Reading.unavailable(self.id, reason)
        if self._failing:
            log.info("%s is back", self.id)
            self._failing = False
        return reading

    def _read(self) -> Reading:
        raise NotImplementedError

    def _reason(self, exc: Exception) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


def pick_gpu(gpus: Sequence[GpuInfo], wanted: int | None) -> GpuInfo:
    """The GPU the `gpu` setting names, else the one with the most memory."""
    for gpu in gpus:
        if gpu.index == wanted:
            return gpu
    if wanted is not None:
        log.warning("GPU %d is not there; showing the GPU with the most memory", wanted)
    return max(gpus, key=lambda gpu: (gpu.total_bytes, -gpu.index))


class Unavailable:
    """A metric nothing on this PC can serve; every read says why."""

    def __init__(self, metric: str, reason: str, short: str | None = None) -> None:
        self.id = metric
        self.label, self.unit = METRICS[metric]
        self.reason = reason
        self.short = short

    def read(self) -> Reading:
        return Reading.unavailable(self.id, self.reason, self.short)

    def close(self) -> None:
        pass


def build_sources(settings: Settings, drm_root: Path = DRM_ROOT) -> dict[str, MetricSource]:
    """Every metric id in `METRICS` with the source that serves it here.

    Args:
        settings: `gpu`, `gpu_temp_range` and `net_full_scale_bps` are used.
        drm_root: where Linux lists its graphics cards (tests point it elsewhere).
    """
    from sysboy_tray.metrics import system

    sources = _gpu_sources(settings, drm_root)
    sources.update(system.sources(settings.net_full_scale_bps))
    return {metric: sources[metric] for metric in METRICS}


def gpu_sources(settings: Settings, drm_root: Path = DRM_ROOT) -> dict[str, MetricSource]:
    """The GPU metrics (`GPU_METRICS`) alone, from the GPU the `gpu` setting picks."""
    return _gpu_sources(settings, drm_root)


def _gpu_sources(settings: Settings, drm_root: Path) -> dict[str, MetricSource]:
    from sysboy_tray.metrics import nvidia

    nvml = nvidia.Nvml()
    nvidia_gpus, why_not = nvml.open()
    if nvidia_gpus:
        gpu = pick_gpu(nvidia_gpus, settings.gpu)
        log.info("GPU metrics from %s (NVIDIA GPU %d)", gpu.name, gpu.index)
        return nvidia.sources(nvml, gpu, settings.gpu_temp_range)
    nvml.shutdown()
    log.info("no NVIDIA GPU: %s", why_not)
    if sys.platform.startswith("linux"):
        from sysboy_tray.metrics import amd

        cards = amd.find_cards(drm_root)
        if cards:
            chosen = pick_gpu([card.info for card in cards], settings.gpu)
            card = next(card for card in cards if card.info.index == chosen.index)
            log.info("GPU metrics from %s (AMD, %s)", chosen.name, card.path.name)
            return amd.sources(card, settings.gpu_temp_range)
        reason = f"No GPU to read: {why_not}, and no AMD GPU was found."
    else:
        reason = f"No GPU to read: {why_not} (AMD GPUs can be read on Linux only)."
    log.warning("%s", reason)
    return {metric: Unavailable(metric, reason, NO_GPU) for metric in GPU_METRICS}


def list_gpus(drm_root: Path = DRM_ROOT) -> list[GpuInfo]:
    """Every GPU the `gpu` setting can pick: the NVIDIA ones, else the AMD ones (Linux)."""
    from sysboy_tray.metrics import nvidia

    nvml = nvidia.Nvml()
    gpus, _ = nvml.open()
    nvml.shutdown()
    if gpus or not sys.platform.startswith("linux"):
        return gpus
    from sysboy_tray.metrics import amd

    return [card.info for card in amd.find_cards(drm_root)]
