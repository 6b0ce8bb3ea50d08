"""AMD GPUs on Linux through the amdgpu driver's sysfs files: VRAM use, load, temperature."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

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

_CARD = re.compile(r"card(\d+)")  # card0, not the connectors such as card0-DP-1


def _read_int(path: Path) -> int:
    with open(path, "rb") as handle:
        return int(handle.read())


@dataclass(frozen=True)
class AmdCard:
    """One amdgpu card: its sysfs folder and what the GPU menu shows of it."""

    info: GpuInfo
    path: Path
    temperature_file: Path | None

    @property
    def device(self) -> Path:
        return self.path / "device"


def find_cards(root: Path) -> list[AmdCard]:
    """The amdgpu cards under `root` (normally /sys/class/drm), in card order."""
    try:
        entries = [(int(m.group(1)), p) for p in root.iterdir() if (m := _CARD.fullmatch(p.name))]
    except OSError:
        return []
    cards: list[AmdCard] = []
    for _, path in sorted(entries):
        device = path / "device"
        try:
            total = _read_int(device / "mem_info_vram_total")
        except (OSError, ValueError):
            continue  # not an amdgpu card (or an unreadable one)
        try:
            name = (device / "product_name").read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        info = GpuInfo(len(cards), name or f"AMD GPU ({path.name})", total, "amd")
        # temp1 is the "edge" sensor, the one every amdgpu card has
        temps = sorted((device / "hwmon").glob("hwmon*/temp1_input"))
        cards.append(AmdCard(info, path, temps[0] if temps else None))
    return cards


class _CardSource(GuardedGpuSource):
    """What the three AMD sources share: one card; file errors become reasons."""

    errors = (OSError, ValueError)

    def __init__(self, card: AmdCard) -> None:
        super().__init__()
        self.card = card

    def _reason(self, exc: Exception) -> str:
        return f"{self.card.info.name} did not give its {self.what} ({exc})"


class AmdVram(_CardSource):
    """VRAM in use, percent of the card's memory."""

    id, label, unit, what = "vram", "VRAM", "MiB", "memory use"

    def _read(self) -> Reading:
        used = _read_int(self.card.device / "mem_info_vram_used")
        return vram_reading(used, self.card.info.total_bytes, self.card.info.name)


class AmdLoad(_CardSource):
    """GPU busy percent, as the driver reports it."""

    id, label, unit, what = "gpu", "GPU load", "%", "load"

    def _read(self) -> Reading:
        return load_reading(float(_read_int(self.card.device / "gpu_busy_percent")))


class AmdTemperature(_CardSource):
    """GPU edge temperature, mapped to the needle over a range of degrees."""

    id, label, unit, what = "gpu_temp", "GPU temp", "°C", "temperature"

    def __init__(self, card: AmdCard, temp_range: tuple[float, float]) -> None:
        super().__init__(card)
        self.low, self.high = temp_range

    def _read(self) -> Reading:
        if self.card.temperature_file is None:
            return Reading.unavailable(
                self.id, f"{self.card.info.name} does not report its temperature"
            )
        degrees = _read_int(self.card.temperature_file) / 1000.0  # millidegrees
        return temperature_reading(degrees, self.low, self.high)


def sources(card: AmdCard, temp_range: tuple[float, float]) -> dict[str, MetricSource]:
    """The VRAM, load and temperature sources of one AMD card."""
    return {
        "vram": AmdVram(card),
        "gpu": AmdLoad(card),
        "gpu_temp": AmdTemperature(card, temp_range),
    }
