"""NVIDIA sources against NVML's Python binding, with only the driver calls stubbed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynvml
import pytest

from sysboy_tray.config import Settings
from sysboy_tray.metrics import GIB, MIB, build_sources, list_gpus

NO_AMD = Path("/nonexistent-drm")


@dataclass
class FakeGpu:
    name: str
    total: int
    used: int
    reserved: int = 256 * MIB
    load: int = 0
    temp: int = 40


@dataclass
class Driver:
    """What the NVML library answers: the GPUs, and the errors to raise instead."""

    gpus: list[FakeGpu]
    init_error: type[pynvml.NVMLError] | None = None
    v2_error: type[pynvml.NVMLError] | None = None
    memory_error: type[pynvml.NVMLError] | None = None
    temp_error: type[pynvml.NVMLError] | None = None
    calls: dict[str, int] = field(default_factory=dict)

    def count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def gpu(self, handle: Any) -> FakeGpu:
        assert isinstance(handle, tuple) and handle[0] == "handle", handle
        return self.gpus[handle[1]]

    def init(self) -> None:
        self.count("init")
        if self.init_error:
            raise self.init_error()

    def shutdown(self) -> None:
        self.count("shutdown")

    def device_count(self) -> int:
        return len(self.gpus)

    def handle_by_index(self, index: int) -> tuple[str, int]:
        self.count("handle")
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return ("handle", index)

    def name(self, handle: Any) -> str:
        return self.gpu(handle).name

    def memory_info(self, handle: Any, version: int | None = None) -> Any:
        gpu = self.gpu(handle)
        if self.memory_error:
            raise self.memory_error()
        if version:
            self.count("memory_v2")
            assert version == pynvml.nvmlMemory_v2
            if self.v2_error:
                raise self.v2_error()
            # v2 keeps the driver's reserved memory out of `used`
            return pynvml.c_nvmlMemory_v2_t(
                version=version,
                total=gpu.total,
                reserved=gpu.reserved,
                free=gpu.total - gpu.used - gpu.reserved,
                used=gpu.used,
            )
        self.count("memory_v1")
        used = gpu.used + gpu.reserved
        return pynvml.c_nvmlMemory_t(total=gpu.total, free=gpu.total - used, used=used)

    def utilization(self, handle: Any) -> Any:
        return pynvml.c_nvmlUtilization_t(gpu=self.gpu(handle).load, memory=0)

    def temperature(self, handle: Any, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        if self.temp_error:
            raise self.temp_error()
        return self.gpu(handle).temp

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Driver:
        """Put this driver behind the `pynvml` calls Sysboy makes (the driver boundary)."""
        for name, method in {
            "nvmlInit": self.init,
            "nvmlShutdown": self.shutdown,
            "nvmlDeviceGetCount": self.device_count,
            "nvmlDeviceGetHandleByIndex": self.handle_by_index,
            "nvmlDeviceGetName": self.name,
            "nvmlDeviceGetMemoryInfo": self.memory_info,
            "nvmlDeviceGetUtilizationRates": self.utilization,
            "nvmlDeviceGetTemperature": self.temperature,
        }.items():
            monkeypatch.setattr(pynvml, name, method)
        return self


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Driver:
    """Replace the NVML library calls (the driver boundary) by a scripted driver."""
    gpu = FakeGpu("NVIDIA GeForce RTX 4080", 16 * GIB, 6 * GIB, load=37, temp=60)
    return Driver([gpu]).install(monkeypatch)


def close_all(sources: dict[str, Any]) -> None:
    for source in sources.values():
        source.close()


def test_vram_percent_comes_from_memory_info_v2(driver: Driver) -> None:
    sources = build_sources(Settings(), NO_AMD)
    reading = sources["vram"].read()
    assert reading.percent == pytest.approx(37.5)  # 6 of 16 GiB, reserved memory left out
    assert reading.raw == pytest.approx(6 * 1024)
    assert reading.unit == "MiB"
    assert reading.detail == "6.0 / 16.0 GiB"
    assert driver.calls.get("memory_v1", 0) == 0
    close_all(sources)


def test_memory_info_v1_is_used_when_v2_fails(driver: Driver) -> None:
    driver.v2_error = pynvml.NVMLError_FunctionNotFound
    sources = build_sources(Settings(), NO_AMD)
    v2_calls = driver.calls["memory_v2"]
    first = sources["vram"].read()
    second = sources["vram"].read()
    expected = (6 * GIB + 256 * MIB) / (16 * GIB) * 100  # v1 counts reserved memory as used
    assert first.percent == pytest.approx(expected)
    assert second.percent == pytest.approx(expected)
    # v2 is asked once while reading, then no more: reads stay cheap
    assert driver.calls["memory_v2"] == v2_calls + 1
    close_all(sources)


def test_an_error_mid_run_blanks_one_read_then_recovers(driver: Driver) -> None:
    sources = build_sources(Settings(), NO_AMD)
    vram = sources["vram"]
    assert vram.read().available
    driver.memory_error = pynvml.NVMLError_GpuIsLost
    lost = vram.read()
    assert not lost.available
    assert lost.reason is not None
    assert "GPU is lost" in lost.reason and "RTX 4080" in lost.reason
    driver.memory_error = None
    driver.gpus[0].used = 8 * GIB
    back = vram.read()
    assert back.percent == pytest.approx(50.0)
    assert driver.calls["init"] == 1  # recovered without starting NVML again
    close_all(sources)


def test_reads_reuse_the_handle(driver: Driver) -> None:
    sources = build_sources(Settings(), NO_AMD)
    for _ in range(3):
        for metric in ("vram", "gpu", "gpu_temp"):
            assert sources[metric].read().available
    handles = driver.calls["handle"]
    for metric in ("vram", "gpu", "gpu_temp"):
        sources[metric].read()
    assert driver.calls["handle"] == handles
    close_all(sources)


def test_two_gpus_default_to_the_one_with_most_memory(driver: Driver) -> None:
    driver.gpus = [
        FakeGpu("NVIDIA GeForce RTX 3060", 12 * GIB, 3 * GIB),
        FakeGpu("NVIDIA RTX A5000", 24 * GIB, 18 * GIB),
    ]
    gpus = list_gpus(NO_AMD)
    assert [(g.index, g.name, g.total_bytes, g.vendor) for g in gpus] == [
        (0, "NVIDIA GeForce RTX 3060", 12 * GIB, "nvidia"),
        (1, "NVIDIA RTX A5000", 24 * GIB, "nvidia"),
    ]
    default = build_sources(Settings(), NO_AMD)
    assert default["vram"].read().percent == pytest.approx(75.0)
    close_all(default)
    chosen = build_sources(Settings(gpu=0), NO_AMD)
    assert chosen["vram"].read().percent == pytest.approx(25.0)
    close_all(chosen)
    missing = build_sources(Settings(gpu=5), NO_AMD)  # e.g. a card taken out
    assert missing["vram"].read().percent == pytest.approx(75.0)
    close_all(missing)


def test_no_driver_at_all(driver: Driver) -> None:
    driver.init_error = pynvml.NVMLError_LibraryNotFound
    sources = build_sources(Settings(), NO_AMD)
    for metric in ("vram", "gpu", "gpu_temp"):
        reading = sources[metric].read()
        assert not reading.available
        assert reading.reason is not None
        assert "NVIDIA driver is not installed" in reading.reason
    assert sources["cpu"].read().available  # the rest of the app lives on
    assert list_gpus(NO_AMD) == []
    assert driver.calls.get("shutdown", 0) == 0  # never started, never shut down
    close_all(sources)


def test_driver_not_loaded_is_said_in_words(driver: Driver) -> None:
    driver.init_error = pynvml.NVMLError_DriverNotLoaded
    reading = build_sources(Settings(), NO_AMD)["vram"].read()
    assert reading.reason is not None and "NVIDIA driver is not running" in reading.reason


def test_a_driver_without_gpus_is_shut_down(driver: Driver) -> None:
    driver.gpus = []
    reading = build_sources(Settings(), NO_AMD)["vram"].read()
    assert reading.reason is not None and "found no GPU" in reading.reason
    assert driver.calls["shutdown"] == driver.calls["init"]


def test_load_and_temperature(driver: Driver) -> None:
    sources = build_sources(Settings(gpu_temp_range=(40.0, 80.0)), NO_AMD)
    load = sources["gpu"].read()
    assert (load.percent, load.raw, load.detail) == (37.0, 37.0, "37 %")
    temp = sources["gpu_temp"].read()
    assert temp.percent == pytest.approx(50.0)  # 60 degC halfway through 40..80
    assert (temp.raw, temp.unit, temp.detail) == (60.0, "°C", "60 °C")
    driver.gpus[0].temp = 95
    assert sources["gpu_temp"].read().percent == 100.0  # past the range: end of scale
    close_all(sources)


def test_a_sensor_the_gpu_lacks(driver: Driver) -> None:
    driver.temp_error = pynvml.NVMLError_NotSupported
    sources = build_sources(Settings(), NO_AMD)
    temp = sources["gpu_temp"].read()
    assert temp.reason == "NVIDIA GeForce RTX 4080 does not report its temperature"
    assert sources["vram"].read().available
    close_all(sources)


def test_nvml_shuts_down_when_the_last_source_closes(driver: Driver) -> None:
    sources = build_sources(Settings(), NO_AMD)
    assert driver.calls["init"] == 1
    sources["vram"].close()
    sources["gpu"].close()
    sources["vram"].close()  # closing twice counts once
    assert driver.calls.get("shutdown", 0) == 0
    sources["gpu_temp"].close()
    assert driver.calls["shutdown"] == 1
