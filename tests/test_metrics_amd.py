"""AMD sources against a fake sysfs tree laid out like the amdgpu driver's."""

from __future__ import annotations

import sys
from pathlib import Path

import pynvml
import pytest

from sysboy_tray.config import Settings
from sysboy_tray.metrics import GIB, MIB, amd, build_sources, list_gpus

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="AMD GPUs are read through Linux sysfs"
)


def add_card(
    drm: Path,
    card: str,
    total: int,
    used: int,
    busy: int = 0,
    millidegrees: int | None = 45000,
    product: str | None = None,
) -> Path:
    device = drm / card / "device"
    device.mkdir(parents=True)
    (device / "mem_info_vram_total").write_text(f"{total}\n")
    (device / "mem_info_vram_used").write_text(f"{used}\n")
    (device / "gpu_busy_percent").write_text(f"{busy}\n")
    if product:
        (device / "product_name").write_text(product + "\n")
    if millidegrees is not None:
        hwmon = device / "hwmon" / "hwmon3"
        hwmon.mkdir(parents=True)
        (hwmon / "temp1_input").write_text(f"{millidegrees}\n")
    return device


@pytest.fixture
def drm(tmp_path: Path) -> Path:
    """/sys/class/drm with an Intel iGPU (no VRAM files), its connector, and one AMD card."""
    root = tmp_path / "drm"
    (root / "card0" / "device").mkdir(parents=True)
    (root / "card0-HDMI-A-1").mkdir()
    (root / "version").write_text("drm 1.1.0\n")
    add_card(root, "card1", 8 * GIB, 2 * GIB, busy=64, millidegrees=52000)
    return root


@pytest.fixture(autouse=True)
def no_nvidia(monkeypatch: pytest.MonkeyPatch) -> None:
    """The NVML library is absent, as on a PC with only an AMD card."""

    def missing() -> None:
        raise pynvml.NVMLError_LibraryNotFound()

    monkeypatch.setattr(pynvml, "nvmlInit", missing)


def test_finds_only_amdgpu_cards(drm: Path) -> None:
    cards = amd.find_cards(drm)
    assert [(c.path.name, c.info.index, c.info.name, c.info.total_bytes) for c in cards] == [
        ("card1", 0, "AMD GPU (card1)", 8 * GIB)
    ]
    assert amd.find_cards(drm / "missing") == []


@linux_only
def test_vram_load_and_temperature(drm: Path) -> None:
    sources = build_sources(Settings(), drm)
    vram = sources["vram"].read()
    assert vram.percent == pytest.approx(25.0)
    assert (vram.raw, vram.unit, vram.detail) == (2048.0, "MiB", "2.0 / 8.0 GiB")
    load = sources["gpu"].read()
    assert load.percent == 64.0
    temp = sources["gpu_temp"].read()
    assert temp.raw == 52.0
    assert temp.percent == pytest.approx((52 - 30) / 60 * 100)


@linux_only
def test_values_follow_the_files(drm: Path) -> None:
    sources = build_sources(Settings(), drm)
    (drm / "card1" / "device" / "mem_info_vram_used").write_text(f"{6 * GIB}\n")
    assert sources["vram"].read().percent == pytest.approx(75.0)


@linux_only
def test_a_file_that_vanishes_blanks_one_read(drm: Path) -> None:
    sources = build_sources(Settings(), drm)
    busy = drm / "card1" / "device" / "gpu_busy_percent"
    busy.unlink()
    gone = sources["gpu"].read()
    assert not gone.available
    assert gone.reason is not None and gone.reason.startswith("AMD GPU (card1) did not give")
    busy.write_text("12\n")
    assert sources["gpu"].read().percent == 12.0
    busy.write_text("garbage\n")
    assert not sources["gpu"].read().available


@linux_only
def test_two_cards_and_the_gpu_setting(drm: Path) -> None:
    add_card(drm, "card2", 16 * GIB, 8 * GIB, product="AMD Radeon RX 7800 XT")
    gpus = list_gpus(drm)
    assert [(g.index, g.name, g.total_bytes, g.vendor) for g in gpus] == [
        (0, "AMD GPU (card1)", 8 * GIB, "amd"),
        (1, "AMD Radeon RX 7800 XT", 16 * GIB, "amd"),
    ]
    assert build_sources(Settings(), drm)["vram"].read().percent == pytest.approx(50.0)
    assert build_sources(Settings(gpu=0), drm)["vram"].read().percent == pytest.approx(25.0)
    assert build_sources(Settings(gpu=1), drm)["vram"].read().percent == pytest.approx(50.0)


@linux_only
@linux_only
def test_a_card_without_temperature_sensor(tmp_path: Path) -> None:
    add_card(tmp_path, "card0", 4 * GIB, 512 * MIB, millidegrees=None)
    sources = build_sources(Settings(), tmp_path)
    assert sources["vram"].read().percent == pytest.approx(12.5)
    temp = sources["gpu_temp"].read()
    assert temp.reason == "AMD GPU (card0) does not report its temperature"


@linux_only
def test_no_gpu_of_either_kind(tmp_path: Path) -> None:
    reading = build_sources(Settings(), tmp_path)["vram"].read()
    assert reading.reason == (
        "No GPU to read: the NVIDIA driver is not installed, and no AMD GPU was found."
    )
