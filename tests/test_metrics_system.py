"""CPU, RAM, network and disk sources: real psutil once, then psutil's reads scripted."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from sysboy_tray.metrics import GIB, system


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def nic(up: bool = True, speed: int = 0, flags: str = "up,broadcast,running") -> Any:
    return SimpleNamespace(isup=up, speed=speed, flags=flags)


def io(recv: int, sent: int) -> Any:
    return SimpleNamespace(bytes_recv=recv, bytes_sent=sent)


def script(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[Any]) -> list[Any]:
    """Make psutil.<name> give these answers in turn; returns the calls' arguments."""
    calls: list[Any] = []

    def answer(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        reply = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    monkeypatch.setattr(psutil, name, answer)
    return calls


def test_real_psutil_reads_are_in_range() -> None:
    sources = system.sources(None)
    for metric, source in sources.items():
        reading = source.read()
        assert reading.metric == metric
        assert reading.available, reading.reason
        assert reading.percent is not None and 0.0 <= reading.percent <= 100.0
        assert reading.detail


def test_cpu_is_primed_once_then_read(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = script(monkeypatch, "cpu_percent", [0.0, 42.5, 7.0])
    cpu = system.Cpu()
    assert len(calls) == 1
    first = cpu.read()
    assert (first.percent, first.raw) == (42.5, 42.5)
    assert cpu.read().percent == 7.0
    assert all(kwargs == {"interval": None} for _, kwargs in calls)  # never blocks


def test_ram_counts_what_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = SimpleNamespace(total=16 * GIB, available=6 * GIB, percent=62.5)
    script(monkeypatch, "virtual_memory", [memory])
    reading = system.Ram().read()
    assert reading.percent == 62.5
    assert (reading.raw, reading.unit, reading.detail) == (10240.0, "MiB", "10.0 / 16.0 GiB")


def test_net_is_a_share_of_the_link_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    script(monkeypatch, "net_if_stats", [{"lo": nic(flags="up,loopback"), "eth0": nic(speed=1000)}])
    counters = script(
        monkeypatch,
        "net_io_counters",
        [
            {"lo": io(0, 0), "eth0": io(1_000, 500)},
            # one second later: 12.5 MB down (10 % of 1 Gbit/s), loopback traffic ignored
            {"lo": io(10**9, 10**9), "eth0": io(12_501_000, 250_500)},
            # a new interface (VPN) brings its whole counter: no spike
            {"lo": io(10**9, 10**9), "eth0": io(12_501_000, 250_500), "tun0": io(10**10, 0)},
        ],
    )
    net = system.Network(clock=clock)
    clock.now += 1.0
    reading = net.read()
    assert reading.percent == pytest.approx(10.0)
    assert reading.raw == pytest.approx(12_500_000)
    assert reading.detail == "↓ 12.5 MB/s ↑ 250.0 kB/s"
    clock.now += 1.0
    assert net.read().percent == 0.0
    assert all(kwargs == {"pernic": True} for _, kwargs in counters)


def test_net_full_scale_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    script(monkeypatch, "net_if_stats", [{"eth0": nic(speed=1000)}])
    script(
        monkeypatch,
        "net_io_counters",
        [{"eth0": io(0, 0)}, {"eth0": io(0, 2_000_000)}],
    )
    net = system.Network(full_scale_bps=10_000_000, clock=clock)
    clock.now += 2.0
    assert net.read().percent == pytest.approx(10.0)  # 1 MB/s up of 10 MB/s


def test_net_without_a_known_link_speed_assumes_a_gigabit(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    script(monkeypatch, "net_if_stats", [{"wlan0": nic(speed=0), "eth1": nic(up=False, speed=10)}])
    script(monkeypatch, "net_io_counters", [{"wlan0": io(0, 0)}, {"wlan0": io(62_500_000, 0)}])
    net = system.Network(clock=clock)
    clock.now += 1.0
    assert net.read().percent == pytest.approx(50.0)


def test_disk_busy_is_the_busiest_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()

    def disk(busy: int) -> Any:
        return SimpleNamespace(busy_time=busy, read_time=0, write_time=0)

    script(
        monkeypatch,
        "disk_io_counters",
        [
            {"sda": disk(1000), "nvme0n1": disk(5000)},
            {"sda": disk(1100), "nvme0n1": disk(5500)},
            {"sda": disk(1100), "nvme0n1": disk(5500)},
        ],
    )
    source = system.Disk(clock=clock)
    clock.now += 2.0
    reading = source.read()
    assert reading.percent == pytest.approx(25.0)  # 500 ms busy in 2 s
    assert reading.detail == "25 % busy (nvme0n1)"
    clock.now += 1.0
    assert source.read().percent == 0.0


def test_disk_without_busy_time_uses_read_and_write_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    before = SimpleNamespace(read_time=100, write_time=100)
    after = SimpleNamespace(read_time=400, write_time=200)
    script(monkeypatch, "disk_io_counters", [{"C:": before}, {"C:": after}])
    source = system.Disk(clock=clock)
    clock.now += 1.0
    assert source.read().percent == pytest.approx(40.0)


def test_no_disks_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    script(monkeypatch, "disk_io_counters", [None])
    reading = system.Disk().read()
    assert reading.reason == "this PC does not report disk activity"


def test_a_failed_os_read_blanks_one_value(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = SimpleNamespace(total=8 * GIB, available=4 * GIB, percent=50.0)
    script(monkeypatch, "virtual_memory", [PermissionError("denied"), memory])
    ram = system.Ram()
    failed = ram.read()
    assert not failed.available
    assert failed.reason is not None and "memory use" in failed.reason
    assert ram.read().percent == 50.0
