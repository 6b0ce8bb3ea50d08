"""NVML shut down while no needle and no tray icon shows a GPU metric, started when one does.

An open NVML session keeps a hybrid laptop's discrete GPU awake. The NVML library
calls are the scripted driver of test_metrics_nvidia (the driver boundary); the
sources, the sampler, the hub and the app are the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from sysboy_tray.app import App
from sysboy_tray.config import Paths, Settings
from sysboy_tray.metrics import GIB, build_sources
from sysboy_tray.sampler import Sampler
from tests.conftest import scaled
from tests.meter import Meter
from tests.test_metrics_nvidia import NO_AMD, Driver, FakeGpu


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Driver:
    gpu = FakeGpu("NVIDIA GeForce RTX 4060 Laptop GPU", 8 * GIB, 2 * GIB, load=5, temp=45)
    return Driver([gpu]).install(monkeypatch)


def until(check: Callable[[], object], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def running(driver: Driver) -> bool:
    """Whether the scripted driver has an NVML session open now."""
    return driver.calls.get("init", 0) > driver.calls.get("shutdown", 0)


def test_sampler_shuts_nvml_down_and_starts_it_again(driver: Driver) -> None:
    sources = build_sources(Settings(), NO_AMD)
    assert running(driver)
    published: list[dict[str, object]] = []
    sampler = Sampler(sources, 0.1, published.append)
    sampler.want({"cpu"})
    sampler.start()
    try:
        until(lambda: not running(driver), "NVML to shut down with no GPU metric shown")
        assert driver.calls == {**driver.calls, "init": 1, "shutdown": 1}
        sampler.want({"cpu", "vram"})
        until(lambda: running(driver), "NVML to start again for VRAM")
        until(lambda: any("vram" in p for p in published), "a VRAM reading")
        vram = next(p["vram"] for p in published if "vram" in p)
        assert vram.available  # type: ignore[attr-defined]
        assert driver.calls["init"] == 2
        # two GPU metrics shown, one goes: NVML stays; the last goes: NVML shuts down
        sampler.want({"vram", "gpu_temp"})
        until(lambda: any("gpu_temp" in p for p in published), "a temperature reading")
        sampler.want({"gpu_temp"})
        time.sleep(0.3)
        assert running(driver)
        sampler.want({"ram"})
        until(lambda: not running(driver), "NVML to shut down again")
        assert (driver.calls["init"], driver.calls["shutdown"]) == (2, 2)
    finally:
        sampler.stop()
        for source in sources.values():
            source.close()
    assert not running(driver)
    assert driver.calls["shutdown"] == 2  # closing a resting session calls nothing more


def test_the_app_follows_the_needles_and_the_tray_icon(driver: Driver) -> None:
    paths = Paths.default()
    settings = Settings(metric="cpu")
    app = App(paths, sources=build_sources(settings, NO_AMD), port=0, interval=0.1, advertise=False)
    app.store.update(metric="cpu")
    app.start()
    try:
        # nothing shows a GPU metric: the tray icon shows CPU, no device is linked
        until(lambda: not running(driver), "NVML to shut down")
        with Meter(app.port, "dev-gpu") as meter:
            meter.wait_for("cpu")
            app.set_metric("vram", "dev-gpu")  # one needle shows VRAM
            until(lambda: running(driver), "NVML to start for the needle")
            sample = meter.wait_for("vram")[-1]
            assert sample["value"] == pytest.approx(25.0)
            app.set_metric("cpu", "dev-gpu")
            until(lambda: not running(driver), "NVML to shut down when the needle moves on")
        app.set_metric("gpu_temp")  # the tray icon (the global metric) shows a GPU metric
        until(lambda: running(driver), "NVML to start for the tray icon")
        until(lambda: app.readings().get("gpu_temp") is not None, "a temperature reading")
    finally:
        app.stop()
    assert not running(driver)
