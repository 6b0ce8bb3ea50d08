"""The whole device, compiled as on a board, takes a whole firmware update within a fixed
heap on the 64-bit MicroPython unix port, and writes it right.

The update needs more than the journey's bound (tests/firmware/test_firmware_heap.py): it
holds the manifest, a chunk's frame and its decoded data besides the linked heap.
bench/bench_update.py gives the figures, on a 32-bit build too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.bench_update import device_update
from sysboy_tray.firmware_tool import build
from sysboy_tray.updater import load_bundle
from tests.conftest import scaled

# the update's need on this port (117 KB, bisected to 1 KB twice; at most 99 KB in use,
# bench/bench_update.py, 2026-11-30) plus 5 % for the allocator's luck with fragmentation.
# Above the journey's bound: the goal (64 KB on 32-bit) is not met during an update yet
# (docs/performance.md). Lower it as the firmware shrinks, never raise it to make this pass.
HEAP_KB = 123


def test_the_whole_device_takes_an_update_within_the_heap_bound(tmp_path: Path) -> None:
    build(tmp_path / "bundle", version="0.2.0")
    bundle = load_bundle(tmp_path / "bundle")
    figures = asyncio.run(
        asyncio.wait_for(device_update(tmp_path / "bundle", bundle, f"{HEAP_KB}K"), scaled(300))
    )
    assert figures["ok"], str(figures["output"])[-2000:]
    assert figures["answers"][-1] == "restarting"  # type: ignore[index]
    assert figures["live_max"] < HEAP_KB * 1024
    slot = Path(str(figures["flash"])) / "ota" / "a"
    for name, data in bundle.files.items():
        assert (slot / name).read_bytes() == data, name


def test_the_bound_is_real(tmp_path: Path) -> None:
    # in half the heap the same update runs out of memory: the check above can fail
    build(tmp_path / "bundle", version="0.2.0")
    bundle = load_bundle(tmp_path / "bundle")
    figures = asyncio.run(
        asyncio.wait_for(
            device_update(tmp_path / "bundle", bundle, f"{HEAP_KB // 2}K"), scaled(300)
        )
    )
    assert not figures["ok"]
    assert "MemoryError" in str(figures["output"])
