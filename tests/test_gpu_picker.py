"""The GPU picker: GPU ▸ in the tray (only with two or more GPUs) and `sysboy gpu [INDEX]`,
against NVML's binding with the driver calls scripted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray.app import App
from sysboy_tray.config import Paths
from sysboy_tray.control import control_factory
from sysboy_tray.metrics import GIB
from sysboy_tray.tray.popup import Popup
from tests.debian import need
from tests.meter import Meter
from tests.test_control_cli import sysboy
from tests.test_metrics_nvidia import NO_AMD, Driver, FakeGpu
from tests.test_tray_popup import popup_ready, shown_menus, xdotool
from tests.tray_parts import dummy_menu
from tests.xvfb import wait_for, xvfb

TWO = [
    FakeGpu("NVIDIA GeForce RTX 3060", 12 * GIB, 3 * GIB),
    FakeGpu("NVIDIA RTX A5000", 24 * GIB, 18 * GIB),
]


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> Driver:
    """Two NVIDIA cards behind the NVML library calls (the driver boundary)."""
    return Driver(list(TWO)).install(monkeypatch)


@pytest.fixture
def app(driver: Driver) -> Iterator[App]:
    """The real app, its metrics built from the scripted driver, VRAM on the needles."""
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(json.dumps({"metric": "vram"}))
    running = App(
        paths,
        port=0,
        interval=0.1,
        advertise=False,
        control=control_factory(paths),
        drm_root=NO_AMD,
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


def texts(items: Any) -> list[str]:
    return [str(item.text) for item in items]


def vram_values(meter: Meter) -> list[float]:
    return [m["value"] for m in meter.messages if m["type"] == "vram"]


def test_gpu_menu_picks_the_card_the_needle_reads(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    menu = dummy_menu(app, tmp_path)
    top = menu.menu().items
    assert texts(top)[:2] == ["Metric", "GPU"]
    gpu_items = top[1].submenu.items
    assert texts(gpu_items) == [
        "0: NVIDIA GeForce RTX 3060 (12 GiB)",
        "1: NVIDIA RTX A5000 (24 GiB)",
    ]
    assert [item.checked for item in gpu_items] == [False, True]  # most memory by default
    with Meter(app.port) as meter:
        meter.wait_until(lambda m: 75.0 in vram_values(meter))  # 18 of 24 GiB
        gpu_items[0](None)
        meter.wait_until(lambda m: 25.0 in vram_values(meter))  # 3 of 12 GiB
    assert app.store.settings.gpu == 0
    assert [item.checked for item in menu.menu().items[1].submenu.items] == [True, False]


def test_no_gpu_menu_with_one_gpu(
    driver: Driver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver.gpus = driver.gpus[:1]
    paths = Paths.default()
    one = App(paths, port=0, advertise=False, drm_root=NO_AMD)
    one.start()
    try:
        assert "GPU" not in texts(dummy_menu(one, tmp_path).menu().items)
    finally:
        one.stop()


def test_sysboy_gpu_lists_and_chooses(app: App) -> None:
    listed = sysboy("gpu")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "  0  NVIDIA GeForce RTX 3060  12.0 GiB",
        "  1  NVIDIA RTX A5000  24.0 GiB  (read now)",
    ]
    chosen = sysboy("gpu", "0")
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip() == "The GPU metrics now read GPU 0 (NVIDIA GeForce RTX 3060)."
    assert app.store.settings.gpu == 0
    assert "(read now)" in sysboy("gpu").stdout.splitlines()[0]

    missing = sysboy("gpu", "5")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "sysboy: there is no GPU 5; GPUs: 0 (NVIDIA GeForce RTX 3060), 1 (NVIDIA RTX A5000)"
    )
    bad = sysboy("gpu", "abc")
    assert bad.returncode == 2 and "is not a GPU's number" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr


@pytest.fixture
def display(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    need("xdotool", "python3-tk")
    with xvfb() as name:
        monkeypatch.setenv("DISPLAY", name)
        yield name


def test_gpu_submenu_in_the_x11_popup(
    app: App, display: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain X11 tray's Tk popup: Metric, then GPU ▸ with both cards, one chosen."""
    popup = Popup(dummy_menu(app, tmp_path).menu())
    with Meter(app.port) as meter:
        meter.wait_until(lambda m: 75.0 in vram_values(meter))
        popup.open(None)
        wait_for(lambda: popup_ready(display), 20, "the popup never opened")
        # Down lights Metric, Down GPU; Right opens it on its first card
        xdotool(display, "key", "--delay", "100", "Down", "Down", "Right")
        wait_for(lambda: len(shown_menus(display)) == 2, 20, "GPU did not open")
        xdotool(display, "key", "Return")
        meter.wait_until(lambda m: 25.0 in vram_values(meter), timeout=10)
        wait_for(lambda: not popup.is_open, 20, "the popup stayed open")
    assert app.store.settings.gpu == 0
