"""Adapters a meter can reach, from recorded psutil adapter lists; the Windows event loop."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from sysboy_tray import advertise, eventloop, netifs
from sysboy_tray.metrics import system

RECORDINGS = sorted((Path(__file__).parent / "vectors" / "adapters").glob("*.json"))
FAMILIES = {"AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6, "AF_LINK": psutil.AF_LINK}


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text("utf-8")))


def psutil_view(recording: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recording as psutil returns it: snicaddr-like entries and snicstats-like stats."""
    addrs = {
        name: [SimpleNamespace(family=FAMILIES[f], address=a) for f, a in entries]
        for name, entries in recording["addrs"].items()
    }
    stats = {name: SimpleNamespace(**nic) for name, nic in recording["stats"].items()}
    return addrs, stats


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> dict[str, Any]:
    """psutil answering with one recorded PC's adapters, its default route as recorded."""
    recording = load(request.param)
    addrs, stats = psutil_view(recording)
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: addrs)
    monkeypatch.setattr(psutil, "net_if_stats", lambda: stats)
    monkeypatch.setattr(netifs, "default_route_address", lambda: recording["default_route"])
    return recording


@pytest.mark.parametrize("recorded", RECORDINGS, ids=lambda p: p.stem, indirect=True)
def test_advertised_addresses_leave_virtual_adapters_out(recorded: dict[str, Any]) -> None:
    # what the app hands zeroconf
    assert advertise.lan_addresses() == recorded["advertised"]


@pytest.mark.parametrize("recorded", RECORDINGS, ids=lambda p: p.stem, indirect=True)
def test_network_metric_sums_only_real_adapters(
    recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = list(recorded["stats"])
    # every adapter moves 1 MB each way in a second: only the real ones may count
    counters = [
        {n: SimpleNamespace(bytes_recv=0, bytes_sent=0) for n in names},
        {n: SimpleNamespace(bytes_recv=1_000_000, bytes_sent=1_000_000) for n in names},
    ]
    monkeypatch.setattr(psutil, "net_io_counters", lambda pernic: counters.pop(0))
    clock = SimpleNamespace(now=100.0)
    net = system.Network(1e9, clock=lambda: clock.now)
    clock.now += 1.0
    reading = net.read()
    assert reading.raw == pytest.approx(1_000_000 * len(recorded["summed"]))


def test_the_recordings_cover_each_kind_of_virtual_adapter() -> None:
    # the recordings above hold a WSL, a Hyper-V, a VPN (by name, by MAC, with none) adapter
    windows = load(RECORDINGS[-1].with_name("windows11_wsl_hyperv_vpn.json"))
    addrs, stats = psutil_view(windows)
    reasons = {a.name: a.virtual_because() for a in netifs.adapters(addrs, stats)}
    kinds = {a.name: a.kind() for a in netifs.adapters(addrs, stats)}
    assert kinds["vEthernet (WSL (Hyper-V firewall))"] == "switch"  # by name
    assert kinds["VMware Network Adapter VMnet8"] == "switch"
    assert kinds["Ethernet 3"] == "vpn"  # TAP-Windows, by its hardware address
    assert kinds["office"] == "vpn"  # a WireGuard tunnel its user named: no hardware address
    assert kinds["Tailscale"] == "vpn"
    assert reasons["vEthernet (Default Switch)"] == netifs.WHY["switch"]
    assert reasons["Ethernet"] is None and reasons["Wi-Fi"] is None


def test_without_any_real_adapter_every_address_is_offered() -> None:
    # an offline PC with only WSL up still lets a device on that switch reach it
    found = [netifs.Adapter("vEthernet (WSL)", "00:15:5d:00:00:01", ("172.20.0.1",), True, False)]
    assert netifs.lan_addresses(found, None) == ["172.20.0.1"]
    assert netifs.lan_addresses([], None) == ["127.0.0.1"]


def test_default_route_address_is_this_machines_own() -> None:
    address = netifs.default_route_address()
    if address is None:
        pytest.skip("this machine has no default route")
    assert any(a.address == address for addrs in psutil.net_if_addrs().values() for a in addrs), (
        address
    )


# ------------------------------------------------------------------ the event loop


def test_app_runs_a_selector_loop_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    from sysboy_tray.app import App
    from tests.conftest import SettableSource

    def windows_default() -> asyncio.AbstractEventLoop:
        raise AssertionError("the platform's default loop (Proactor on Windows) was chosen")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(asyncio, "new_event_loop", windows_default)
    app = App(sources={"cpu": SettableSource("cpu")}, port=0, advertise=False)
    assert isinstance(app.loop, asyncio.SelectorEventLoop)
    app.start()
    try:
        # select() on Windows watches at most 512 sockets: the connection cap stays below
        assert app.server is not None
        assert app.server.guard.total == 512 - eventloop.WINDOWS_RESERVE
    finally:
        app.stop()


def test_elsewhere_the_platform_default_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from sysboy_tray.eventloop import new_event_loop

    made: list[asyncio.AbstractEventLoop] = []
    real = asyncio.new_event_loop

    def default() -> asyncio.AbstractEventLoop:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(asyncio, "new_event_loop", default)
    loop = new_event_loop("linux")
    loop.close()
    assert made == [loop]
