"""The whole system across a real network link: two network namespaces joined by a veth pair.

The "pc" namespace runs `sysboy serve`; the "device" namespace runs the firmware (sim HAL)
under the MicroPython unix port. The device finds the PC by real multicast mDNS, links,
and its needle follows values pushed on the PC. Then the link is cut until the device's
read timeout notices, and mended; then the server restarts on another port.

Needs root (namespaces) and iproute2. Deselect with `-m "not slow"`. The five-minute Wi-Fi
drop runs only with SYSBOY_LONG_TESTS=1.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sysboy_tray.simulator.device import device_id, find_micropython
from tests import handshake
from tests.console import Console, child_env, sysboy, sysboy_argv
from tests.debian import needs
from tests.firmware.upy import FIRMWARE

SUBNET = "10.231.0"  # private, and only ever inside the test's namespaces
PC_IP = f"{SUBNET}.1"
DEVICE_IP = f"{SUBNET}.2"
MULTICAST = "224.0.0.0/4"
FIRST_PORT, SECOND_PORT = 8765, 8766  # free: nothing else lives in the pc namespace
READ_TIMEOUT_S = 30  # the firmware's (link.py's _READ_TIMEOUT_S)
LONG_DROP_S = 300

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="needs root: it builds network namespaces (ip netns) joined by a veth link",
    ),
    needs("iproute2"),
    pytest.mark.skipif(find_micropython() is None, reason="needs the MicroPython unix port"),
]


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Hosts:
    """Two namespaces, "pc" and "device", and the two ends of the link between them."""

    pc: str
    device: str
    pc_link: str
    device_link: str

    def on(self, namespace: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", namespace, *argv]

    def cut(self) -> None:
        """Take the PC's end of the link down: nothing passes either way."""
        ip("-n", self.pc, "link", "set", self.pc_link, "down")

    def mend(self) -> None:
        """Bring the link back; a link going down loses its routes, so they are set again."""
        ip("-n", self.pc, "link", "set", self.pc_link, "up")
        for namespace, link in ((self.pc, self.pc_link), (self.device, self.device_link)):
            ip("-n", namespace, "route", "replace", MULTICAST, "dev", link)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    tag = f"{os.getpid() % 100000}{secrets.token_hex(2)}"  # unique per run; fits IFNAMSIZ
    made = Hosts(f"sysboy-pc-{tag}", f"sysboy-dev-{tag}", f"sbp{tag}", f"sbd{tag}")
    try:
        ip("netns", "add", made.pc)
        ip("netns", "add", made.device)
        ip("link", "add", made.pc_link, "type", "veth", "peer", "name", made.device_link)
        ip("link", "set", made.pc_link, "netns", made.pc)
        ip("link", "set", made.device_link, "netns", made.device)
        for namespace, link, address in (
            (made.pc, made.pc_link, PC_IP),
            (made.device, made.device_link, DEVICE_IP),
        ):
            ip("-n", namespace, "addr", "add", f"{address}/24", "dev", link)
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("-n", namespace, "link", "set", link, "up")
            ip("-n", namespace, "route", "add", MULTICAST, "dev", link)
        yield made
    finally:
        for namespace in (made.pc, made.device):
            _end_everything_in(namespace)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
        # a link never moved into its namespace is still here
        subprocess.run(["ip", "link", "del", made.pc_link], capture_output=True, check=False)


def _end_everything_in(namespace: str) -> None:
    """Kill what still runs in our own namespace (only this test started anything there)."""
    found = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)


def start_server(hosts: Hosts, port: int) -> Console:
    """`sysboy serve` in the pc namespace, advertising itself by mDNS."""
    # a pushed value must outlast the cut (it expires after 30 s by default)
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    if not settings.exists():
        settings.write_text(json.dumps({"custom_ttl_s": 3600}))
    server = Console(
        hosts.on(hosts.pc, *sysboy_argv("serve", "--port", str(port), "--interval", "0.2")),
        env=child_env(),
        merge_stderr=False,
    )
    server.wait_line("advertising ", "the server to advertise itself", timeout=30)
    return server


def on_pc(hosts: Hosts, *args: str) -> None:
    done = sysboy(*args, prefix=hosts.on(hosts.pc))
    assert done.returncode == 0, done.stderr


def show(hosts: Hosts, value: float) -> None:
    """Push `value` as metric `demo` on the PC and make every needle show it."""
    on_pc(hosts, "push", "demo", f"{value:g}")
    on_pc(hosts, "metric", "demo")


def start_device(hosts: Hosts, folder: Path) -> Console:
    """The firmware under MicroPython in the device namespace; it must find the PC itself."""
    folder.mkdir(parents=True, exist_ok=True)
    # paired with the PC as a USB deploy does it (the PC must have started: its id is needed)
    pairing = handshake.pair(device_id("two-hosts"))
    cfg = {"version": 1, "ssid": "SysboyHome", "password": "hunter2hunter2"}
    cfg.update(key=pairing.key, pc=pairing.pc)
    cfg["idle_park_s"] = 3600  # no idle park within the test: a park comes from the link ending
    (folder / "sysboy.json").write_text(json.dumps(cfg))
    binary = find_micropython()
    assert binary is not None
    env = child_env(SYSBOY_DEVICE_DIR=str(folder), SYSBOY_SIM_ID=device_id("two-hosts"))
    env.pop("SYSBOY_MDNS_ADDR", None)  # real multicast, nothing else
    return Console(hosts.on(hosts.device, binary, str(FIRMWARE / "main.py")), env=env)


def first_movement(device: Console) -> float:
    """Seconds from starting the device to its first needle line above zero."""

    def moved(lines: list[str]) -> int | None:
        for i, line in enumerate(lines):
            if line.startswith("needle ") and float(line.split()[1]) > 0:
                return i + 1
        return None

    index = device.wait_for(moved, "the needle's first movement", timeout=30)
    assert isinstance(index, int)
    return device.times[index - 1] - device.started


def one_device_listed(hosts: Hosts) -> None:
    """The PC lists the device once: a dropped link leaves no ghost."""
    done = sysboy("status", "--json", prefix=hosts.on(hosts.pc))
    assert done.returncode == 0, done.stderr
    assert [d["id"] for d in json.loads(done.stdout)["devices"]] == [device_id("two-hosts")]


def cut_until_noticed(hosts: Hosts, device: Console) -> tuple[int, float]:
    """Cut the link until the device's read timeout notices and the needle parks."""
    before = len(device.lines)
    cut_at = time.monotonic()
    hosts.cut()
    noticed = device.wait_line(
        f"link: no word from the PC for {READ_TIMEOUT_S} s",
        timeout=READ_TIMEOUT_S + 30,
        after=before,
    )
    # the needle stood until the read timeout, then parked
    assert not any(line == "needle 0.0000" for line in device.lines[before:noticed])
    parked = device.wait_line("needle 0.0000", "the needle to park", timeout=10, after=noticed)
    return parked, time.monotonic() - cut_at


def needles_after(device: Console, index: int) -> list[float]:
    return [float(x.split()[1]) for x in device.lines[index:] if x.startswith("needle ")]


def test_device_finds_the_pc_follows_it_and_survives_a_cut_and_a_restart(
    hosts: Hosts, tmp_path: Path
) -> None:
    server = start_server(hosts, FIRST_PORT)
    device: Console | None = None
    try:
        show(hosts, 40)
        device = start_device(hosts, tmp_path / "device")
        to_first = first_movement(device)
        print(f"\ndevice start to first needle movement: {to_first:.2f} s (target under 2 s)")
        device.wait_line("discovery: found ", "discovery by mDNS", timeout=5)
        assert any(f"link: connected to {PC_IP}:{FIRST_PORT}" in x for x in device.lines)
        at_40 = device.wait_line("needle 0.4000", timeout=20)
        on_pc(hosts, "push", "demo", "25")
        at_25 = device.wait_line("needle 0.2500", timeout=20, after=at_40)
        on_pc(hosts, "push", "demo", "75")
        device.wait_line("needle 0.7500", timeout=20, after=at_25)

        parked, noticed_s = cut_until_noticed(hosts, device)
        print(f"link cut: the device noticed and parked after {noticed_s:.1f} s")
        mended_at = time.monotonic()
        hosts.mend()
        back = device.wait_line(
            f"link: connected to {PC_IP}:{FIRST_PORT}", "the link again", timeout=90, after=parked
        )
        device.wait_line("needle 0.7500", timeout=20, after=back)
        print(f"link mended: needle back after {time.monotonic() - mended_at:.1f} s")
        one_device_listed(hosts)

        before_restart = len(device.lines)
        assert server.stop() == 0, server.output()
        device.wait_line("needle 0.0000", "the park as the server quits", 20, before_restart)
        restarted_at = time.monotonic()
        server = start_server(hosts, SECOND_PORT)
        show(hosts, 60)
        # the reconnect backoff has grown through the cut (it resets after 60 s linked),
        # and three failures on the old port come before asking the network again
        found = device.wait_line(
            "discovery: found ", "rediscovery", timeout=120, after=before_restart
        )
        assert f"at {PC_IP}:{SECOND_PORT}" in device.lines[found]
        relinked = device.wait_line(
            f"link: connected to {PC_IP}:{SECOND_PORT}", timeout=20, after=found
        )
        device.wait_line("needle 0.6000", timeout=20, after=relinked)
        print(
            f"server restarted on another port: needle back after "
            f"{time.monotonic() - restarted_at:.1f} s"
        )

        # killed outright (kill -9): no park message, no close frame; the device sees its
        # link drop, rests the needle, and links again once the server is back
        before_kill = len(device.lines)
        server.stop(signal.SIGKILL)
        parked = device.wait_line("needle 0.0000", "the park after kill -9", 40, before_kill)
        killed_at = time.monotonic()
        server = start_server(hosts, SECOND_PORT)
        show(hosts, 60)
        device.wait_line("needle 0.6000", "the needle back after kill -9", 90, parked)
        print(f"server killed and started: needle back after {time.monotonic() - killed_at:.1f} s")

        assert device.proc.poll() is None  # one process throughout: no reset, no crash
        assert not any(line == "reset" or line.startswith("error in") for line in device.lines)
    finally:
        server.stop()
        if device is not None:
            device.stop()


@pytest.mark.skipif(
    os.environ.get("SYSBOY_LONG_TESTS") != "1", reason="takes 6 minutes: set SYSBOY_LONG_TESTS=1"
)
def test_device_survives_a_five_minute_wifi_drop(hosts: Hosts, tmp_path: Path) -> None:
    server = start_server(hosts, FIRST_PORT)
    device: Console | None = None
    try:
        show(hosts, 50)
        device = start_device(hosts, tmp_path / "device")
        device.wait_line("needle 0.5000", timeout=30)
        parked, down_s = cut_until_noticed(hosts, device)
        time.sleep(max(0.0, LONG_DROP_S - down_s))  # the drop itself, not a timeout
        assert device.proc.poll() is None, device.output()
        # all that time: no link, and the needle stayed parked
        assert not any(line.startswith("link: connected") for line in device.lines[parked:])
        assert needles_after(device, parked) == [0.0]
        mended_at = time.monotonic()
        hosts.mend()
        back = device.wait_line("link: connected to ", "the link again", timeout=90, after=parked)
        device.wait_line("needle 0.5000", timeout=20, after=back)
        print(
            f"\nafter a {LONG_DROP_S} s drop: needle back {time.monotonic() - mended_at:.1f} s "
            "after the link returned"
        )
        one_device_listed(hosts)
        assert not any(line == "reset" or line.startswith("error in") for line in device.lines)
    finally:
        server.stop()
        if device is not None:
            device.stop()
