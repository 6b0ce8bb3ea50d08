"""NVIDIA GPUs through NVML (nvidia-ml-py): VRAM use, load and temperature.

NVML is started when the sources are built, shut down whenever no GPU metric is
shown (an open session keeps a hybrid laptop's discrete GPU awake), started again
by the next read, and shut down for good when the last source closes. A failed
query blanks that value for one read; the next read tries again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pynvml

from sysboy_tray.metrics import (
    GpuInfo,
    GuardedGpuSource,
    MetricSource,
    Reading,
    load_reading,
    temperature_reading,
    vram_reading,
)

log = logging.getLogger(__name__)

# why NVML could not start, in words a user understands
_START_FAILURES: dict[type[pynvml.NVMLError], str] = {
    pynvml.NVMLError_LibraryNotFound: "the NVIDIA driver is not installed",
    pynvml.NVMLError_DriverNotLoaded: "the NVIDIA driver is not running",
    pynvml.NVMLError_NoPermission: "the NVIDIA driver refused access (no permission)",
    pynvml.NVMLError_LibRmVersionMismatch: "the NVIDIA driver was updated: restart the PC",
}


def _start_failure(exc: pynvml.NVMLError) -> str:
    return _START_FAILURES.get(type(exc), f"the NVIDIA driver did not start ({exc})")


class Nvml:
    """One NVML session: started at most once, shut down when its last source closes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opened: tuple[list[GpuInfo], str | None] | None = None
        self._running = False
        self._holders = 0
        self._closed = False
        # the sources read since they were last told to rest; none: NVML is shut down
        self._active: set[int] = set()
        # bumped at every restart: handles from before a shutdown are not to be used
        self.generation = 0

    def open(self) -> tuple[list[GpuInfo], str | None]:
        """Start NVML (once) and list its GPUs; with none, the reason in words."""
        with self._lock:
            if self._opened is None:
                self._opened = self._start()
            return self._opened

    def _start(self) -> tuple[list[GpuInfo], str | None]:
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            log.debug("nvmlInit failed: %r", exc)
            return [], _start_failure(exc)
        self._running = True
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        except pynvml.NVMLError as exc:
            return [], f"the NVIDIA driver cannot count its GPUs ({exc})"
        gpus = []
        for index in range(count):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = str(pynvml.nvmlDeviceGetName(handle))
                total = memory_info(handle)[1]
            except pynvml.NVMLError as exc:
                # one unreadable GPU (lost, no permission) must not hide the others
                log.warning("NVIDIA GPU %d cannot be read: %s", index, exc)
                continue
            gpus.append(GpuInfo(index, name, total, "nvidia"))
        if not gpus:
            return [], "the NVIDIA driver found no GPU it can read"
        return gpus, None

    def wake(self, source: object) -> int:
        """`source` is about to read: start NVML again if it rests; the session's generation.

        Raises:
            NVMLError: NVML cannot start again (the driver went away).
        """
        with self._lock:
            self._active.add(id(source))
            if not self._running and not self._closed and self._opened and self._opened[0]:
                pynvml.nvmlInit()
                self._running = True
                self.generation += 1
                log.info("NVML started again: a GPU metric is shown")
            return self.generation

    def rest(self, source: object) -> None:
        """`source` is shown nowhere now; with no source active, NVML shuts down.

        An open NVML session keeps a laptop's discrete GPU awake (and drawing power).
        """
        with self._lock:
            self._active.discard(id(source))
            if self._active or not self._running:
                return
            self._running = False
        log.info("no GPU metric is shown: NVML shut down so the GPU may sleep")
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as exc:
            log.debug("nvmlShutdown failed: %s", exc)

    def hold(self) -> None:
        """One more source uses this session."""
        with self._lock:
            self._holders += 1

    def release(self) -> None:
        """A source is done; the last one shuts NVML down."""
        with self._lock:
            self._holders -= 1
            last = self._holders <= 0
            if last:
                self._closed = True
        if last:
            self.shutdown()

    def shutdown(self) -> None:
        """Shut NVML down if it was started."""
        with self._lock:
            running, self._running = self._running, False
        if running:
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError as exc:
                log.debug("nvmlShutdown failed: %s", exc)


def memory_info(handle: Any, try_v2: bool = True) -> tuple[int, int, bool]:
    """(used, total) bytes and whether v2 answered; v2 leaves out driver-reserved memory."""
    if try_v2:
        try:
            info = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
            return int(info.used), int(info.total), True
        except pynvml.NVMLError as exc:
            log.debug("memory info v2 failed (%s); trying v1", exc)
    info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return int(info.used), int(info.total), False


class NvidiaGpu:
    """The GPU the sources read: its cached handle and what its driver supports."""

    def __init__(self, nvml: Nvml, info: GpuInfo) -> None:
        self.nvml = nvml
        self.info = info
        self._handle: Any = None
        self._generation = 0
        self._memory_v2 = True

    def ready(self, source: object) -> None:
        """Before a read: NVML running; a handle from an earlier session is dropped."""
        generation = self.nvml.wake(source)
        if generation != self._generation:
            self._generation = generation
            self._handle = None

    def handle(self) -> Any:
        if self._handle is None:
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.info.index)
        return self._handle

    def memory(self) -> tuple[int, int]:
        """(used, total) bytes; once v2 fails and v1 answers, only v1 is asked."""
        used, total, v2 = memory_info(self.handle(), self._memory_v2)
        if self._memory_v2 and not v2:
            log.info("%s has no memory info v2; using v1", self.info.name)
            self._memory_v2 = False
        return used, total

    def failure(self, what: str, exc: pynvml.NVMLError) -> str:
        """The reason a query failed, in words; a handle that failed is fetched again."""
        if isinstance(exc, pynvml.NVMLError_NotSupported):
            return f"{self.info.name} does not report its {what}"
        self._handle = None  # the GPU may have been reset: its old handle can be stale
        return f"{self.info.name} did not give its {what} ({exc})"


class _GpuSource(GuardedGpuSource):
    """What the three NVIDIA sources share: one GPU; NVML errors become reasons."""

    errors = (pynvml.NVMLError,)

    def __init__(self, gpu: NvidiaGpu) -> None:
        super().__init__()
        self.gpu = gpu
        self._closed = False
        gpu.nvml.hold()

    def _reason(self, exc: Exception) -> str:
        assert isinstance(exc, pynvml.NVMLError)
        return self.gpu.failure(self.what, exc)

    def read(self) -> Reading:
        try:
            self.gpu.ready(self)
        except pynvml.NVMLError as exc:
            return Reading.unavailable(self.id, _start_failure(exc))
        return super().read()

    def idle(self) -> None:
        """Not shown anywhere now: let NVML shut down when no GPU metric is."""
        self.gpu.nvml.rest(self)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.gpu.nvml.release()


class NvidiaVram(_GpuSource):
    """VRAM in use, percent of the card's memory."""

    id, label, unit, what = "vram", "VRAM", "MiB", "memory use"

    def _read(self) -> Reading:
        used, total = self.gpu.memory()
        return vram_reading(used, total, self.gpu.info.name)


class NvidiaLoad(_GpuSource):
    """GPU utilization: the share of time a kernel ran, percent."""

    id, label, unit, what = "gpu", "GPU load", "%", "load"

    def _read(self) -> Reading:
        return load_reading(float(pynvml.nvmlDeviceGetUtilizationRates(self.gpu.handle()).gpu))


class NvidiaTemperature(_GpuSource):
    """GPU core temperature, mapped to the needle over a range of degrees."""

    id, label, unit, what = "gpu_temp", "GPU temp", "°C", "temperature"

    def __init__(self, gpu: NvidiaGpu, temp_range: tuple[float, float]) -> None:
        super().__init__(gpu)
        self.low, self.high = temp_range

    def _read(self) -> Reading:
        # the older call: nvmlDeviceGetTemperatureV needs a recent driver
        degrees = float(
            pynvml.nvmlDeviceGetTemperature(self.gpu.handle(), pynvml.NVML_TEMPERATURE_GPU)
        )
        return temperature_reading(degrees, self.low, self.high)


def sources(nvml: Nvml, info: GpuInfo, temp_range: tuple[float, float]) -> dict[str, MetricSource]:
    """The VRAM, load and temperature sources of one NVIDIA GPU."""
    gpu = NvidiaGpu(nvml, info)
    return {
        "vram": NvidiaVram(gpu),
        "gpu": NvidiaLoad(gpu),
        "gpu_temp": NvidiaTemperature(gpu, temp_range),
    }
