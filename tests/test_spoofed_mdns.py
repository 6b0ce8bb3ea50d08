"""A spoofed mDNS answer that arrives first (issue 11): three hosts on one bridged LAN.

"pc" runs `sysboy serve` (real zeroconf); "device" runs the paired firmware (sim HAL) under
the MicroPython unix port, finding its PC by real multicast; "stranger" answers every query
for the service at once, naming its own WebSocket server and copying the PC's id from its
advert, and speaks protocol v2 without the key (tests/firmware/stranger_pc.py). The meter
must end linked to its own PC, with its config file byte-for-byte unchanged and no write to
its flash at all (counted by inotify on the simulated flash folder).

Needs root (namespaces), iproute2 and the MicroPython unix port. The stranger usually wins
the race (it answers from a tight loop, zeroconf from its event loop); a run it loses is not
the case under test, so it is run again, up to RACES times.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sysboy_tray.simulator.device import device_id, find_micropython
from tests import handshake
from tests.console import Console, child_env, sysboy, sysboy_argv
from tests.debian import needs
from tests.firmware.flash_watch import FlashWatch, available
from tests.firmware.upy import FIRMWARE, REPO

SUBNET = "10.232.0"  # private, and only ever inside the test's namespaces
ADDRESSES = {"pc": f"{SUBNET}.1", "device": f"{SUBNET}.2", "stranger": f"{SUBNET}.66"}
PORT = 8765  # the real PC's; nothing else lives in its namespace
STRANGER_PORT = 8770
MULTICAST = "224.0.0.0/4"
METER = device_id("spoofed-mdns")
RACES = 3

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="needs root: it builds network namespaces (ip netns) on a bridge",
    ),
    needs("iproute2"),
    pytest.mark.skipif(find_micropython() is None, reason="needs the MicroPython unix port"),
    pytest.mark.skipif(not available(), reason="counts flash writes with Linux inotify"),
]


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Lan:
    """One namespace per host, each joined by a veth link to a bridge in a fourth."""

    names: dict[str, str]  # host -> namespace

    def on(self, host: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.names[host], *argv]


@pytest.fixture
def lan() -> Iterator[Lan]:
    tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"
    hub = f"sysboy-lan-{tag}"
    made = Lan({host: f"sysboy-{host[:3]}-{tag}" for host in ADDRESSES})
    try:
        ip("netns", "add", hub)
        try:
            ip("-n", hub, "link", "add", "br0", "type", "bridge")
        except RuntimeError as exc:
            pytest.skip(f"needs Linux bridges for a three-host LAN: {exc}")
        ip("-n", hub, "link", "set", "br0", "up")
        for host, address in ADDRESSES.items():
            namespace = made.names[host]
            ip("netns", "add", namespace)
            port = f"p{host[:3]}"
            ip("-n", hub, "link", "add", port, "type", "veth", "peer", "eth0", "netns", namespace)
            ip("-n", hub, "link", "set", port, "master", "br0", "up")
            ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("-n", namespace, "route", "add", MULTICAST, "dev", "eth0")
        yield made
    finally:
        for namespace in [*made.names.values(), hub]:
            _end_everything_in(namespace)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


def _end_everything_in(namespace: str) -> None:
    """Kill what still runs in our own namespace (only this test started anything there)."""
    found = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)


def on_pc(lan: Lan, *args: str) -> subprocess.CompletedProcess[str]:
    done = sysboy(*args, prefix=lan.on("pc"))
    assert done.returncode == 0, done.stderr
    return done


def paired_flash(folder: Path, pairing: handshake.Pairing) -> bytes:
    """The meter's flash as a USB deploy leaves it; the config file's bytes."""
    folder.mkdir(parents=True)
    cfg = {"version": 1, "ssid": "SysboyHome", "password": "hunter2hunter2", "idle_park_s": 3600}
    cfg.update(key=pairing.key, pc=pairing.pc)
    (folder / "sysboy.json").write_text(json.dumps(cfg))
    return (folder / "sysboy.json").read_bytes()


def start_device(lan: Lan, folder: Path) -> Console:
    """The firmware in the device namespace, on the flash in `folder`."""
    binary = find_micropython()
    assert binary is not None
    env = child_env(SYSBOY_DEVICE_DIR=str(folder), SYSBOY_SIM_ID=METER)
    env.pop("SYSBOY_MDNS_ADDR", None)  # real multicast, nothing else
    return Console(lan.on("device", binary, str(FIRMWARE / "main.py")), env=env)


def proven_after(device: Console) -> float:
    """Seconds from the device's start to its proven link with its own PC."""
    index = device.wait_line("link: the PC proved our key", "the proven link", timeout=60)
    return device.times[index] - device.started


def test_a_spoofed_answer_that_arrives_first_changes_nothing(lan: Lan, tmp_path: Path) -> None:
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"custom_ttl_s": 3600}))
    server = Console(
        lan.on("pc", *sysboy_argv("serve", "--port", str(PORT), "--interval", "0.2")),
        env=child_env(),
        merge_stderr=False,
    )
    stranger: Console | None = None
    device: Console | None = None
    flash: FlashWatch | None = None
    try:
        server.wait_line("advertising ", "the server to advertise itself", timeout=30)
        pairing = handshake.pair(METER)  # as `sysboy firmware deploy` pairs it
        on_pc(lan, "push", "demo", "40")
        on_pc(lan, "metric", "demo")
        stranger = Console(
            lan.on(
                "stranger",
                sys.executable,
                *("-m", "tests.firmware.stranger_pc", ADDRESSES["stranger"], pairing.pc),
                str(STRANGER_PORT),
            ),
            env=child_env(PYTHONPATH=str(REPO)),
        )
        stranger.wait_line("ready", "the stranger's server", timeout=30)

        lost = 0
        seen = ""
        for race in range(RACES):
            folder = tmp_path / f"device{race}"
            config = paired_flash(folder, pairing)
            flash = FlashWatch(folder).start()
            device = start_device(lan, folder)
            linked_s = proven_after(device)
            first = device.lines[device.wait_line("discovery: found ", timeout=1)]
            if ADDRESSES["stranger"] in first:
                break  # the case under test: the stranger's answer came first
            lost += 1
            seen = device.output() + "\n-- stranger --\n" + stranger.output()
            device.stop()
            flash.close()
        else:
            pytest.fail(f"the stranger's answer never came first in {RACES} runs:\n{seen}")
        assert device is not None

        # the meter went to the stranger first, which could not prove the key
        assert f"discovery: found Desk PC at {ADDRESSES['stranger']}:{STRANGER_PORT}" in first
        assert "link: 'Desk PC' is not our PC (it did not prove our key)" in device.lines
        closed = stranger.wait_line("closed ", "the meter to leave the stranger", timeout=10)
        assert stranger.lines[closed].split()[1] == "1008"
        assert not any(line.startswith("frame ") for line in stranger.lines)  # only its hello
        assert not any(line.startswith("link: paired with") for line in device.lines)
        # ... and then to its own PC, which sees its proven link and moves its needle
        proven = device.lines.index("link: the PC proved our key")
        tries = [i for i, x in enumerate(device.lines[:proven]) if x.startswith("link: connected")]
        assert device.lines[tries[0]].endswith(f" {ADDRESSES['stranger']}:{STRANGER_PORT}")
        assert device.lines[tries[-1]] == f"link: connected to {ADDRESSES['pc']}:{PORT}"
        # the stranger answered the next query first too; discovery passed over it
        assert stranger.lines.count(f"answered {ADDRESSES['device']}") >= len(tries)
        status = json.loads(on_pc(lan, "status", "--json").stdout)
        assert [d["id"] for d in status["devices"]] == [METER]
        device.wait_line("needle 0.4000", "the real PC's sample", timeout=20)
        moved = [
            i
            for i, line in enumerate(device.lines)
            if line.startswith("needle ") and line != "needle 0.0000"
        ]
        assert moved[0] > proven  # nothing moved before its own PC's proven link

        # its config file is byte-for-byte what the deploy wrote, and the flash was not touched
        assert (folder / "sysboy.json").read_bytes() == config
        assert flash.writes() == []
        flash.close()

        # the same meter and PC without a stranger, for comparison
        device.stop()
        stranger.stop()
        paired_flash(tmp_path / "alone", pairing)
        alone = start_device(lan, tmp_path / "alone")
        try:
            alone_s = proven_after(alone)
        finally:
            alone.stop()
        print(
            f"\nstranger answered first (it lost {lost} race(s) before): linked to the real PC "
            f"{linked_s:.2f} s after start; without a stranger: {alone_s:.2f} s; "
            "0 flash writes, config unchanged"
        )
    finally:
        if flash is not None:
            flash.close()
        server.stop()
        if stranger is not None:
            stranger.stop()
        if device is not None:
            device.stop()
