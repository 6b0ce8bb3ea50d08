"""The device's link in a 64 KiB MicroPython heap: it runs, and its heap does not grow."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.bench_firmware import link_run
from sysboy_tray.firmware_tool import build
from tests.conftest import scaled

FRAMES = 3000
HEAP_SLACK = 256  # bytes: the allocator's rounding, far below one leaked frame per 10 frames


def test_the_link_runs_in_64k_and_the_heap_returns_to_its_steady_state(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    build(bundle)  # compiled, as on a board: source compiling would need its own heap
    figures = asyncio.run(asyncio.wait_for(link_run(bundle, FRAMES, "64K"), scaled(120)))
    assert figures["frames"] == FRAMES
    assert figures["heap_after"] - figures["heap_steady"] <= HEAP_SLACK, figures
    assert abs(figures["needle"] - 0.846) < 1e-6  # 61.5 % through the curved table, arrived
    assert figures["heap_free_after"] > 0
