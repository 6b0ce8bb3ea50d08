"""Load, shortened (bench/bench_load.py runs 200 devices for 60 s): 50 devices, 5 s, 10 Hz."""

from __future__ import annotations

from bench.bench_load import run_load


def test_fifty_devices_each_get_every_tick_and_memory_stays_flat() -> None:
    result = run_load(devices=50, seconds=5.0, idle_seconds=1.0)
    assert result.problems == []  # no ERROR or traceback in the server's log, clean exit
    assert result.ticks >= 10
    assert all(code is None for code in result.closed)  # no link dropped
    assert result.worst_share >= 0.99  # every device got at least 99 % of the ticks
    assert result.rss_end - result.rss_linked < 5  # MB, over the run
