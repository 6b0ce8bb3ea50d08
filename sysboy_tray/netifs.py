"""Which network adapters lead to the meter: real LAN adapters, never virtual ones.

A PC with WSL, Hyper-V, VirtualBox, Docker or a VPN has adapters whose addresses a
meter on the home Wi-Fi can never reach, and whose traffic is the real adapter's
traffic counted twice. mDNS advertises only the adapters kept here, and the network
metric sums only their counters.

psutil reports friendly names on Windows ("Wi-Fi", "vEthernet (WSL)") and kernel
names elsewhere ("wlan0", "docker0"); both are matched here, with the hardware
address prefixes that virtual adapters are given and the address ranges VPNs use.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

# Names of adapters that never lead to the meter. Hypervisor and container switches:
_SWITCH_NAME = re.compile(
    r"""^(docker|br-|virbr|veth|vnet|vmnet|vboxnet|lxcbr|lxdbr|cni|flannel|cali|podman)
    | vethernet | hyper-v | \bwsl\b | default\ switch | virtualbox | vmware""",
    re.IGNORECASE | re.VERBOSE,
)
# VPN and tunnel drivers:
_VPN_NAME = re.compile(
    r"""^(tun|tap|wg|utun|ipsec|ppp|zt|tailscale|nordlynx|proton|mullvad|ts\d)
    | vpn | wireguard | wintun | openvpn | tap-windows | tailscale | zerotier | hamachi
    | radmin | anyconnect | globalprotect | pangp | fortinet | teredo | isatap""",
    re.IGNORECASE | re.VERBOSE,
)
# Loopbacks, packet-capture loopbacks, Bluetooth PAN:
_OTHER_NAME = re.compile(
    r"^(lo\d*|loopback.*)$ | loopback\ pseudo-interface | npcap | bluetooth",
    re.IGNORECASE | re.VERBOSE,
)
# Organisation prefixes of the hardware addresses hypervisors and containers give their
# adapters: Hyper-V (and so WSL), VMware, VirtualBox, Parallels, QEMU/KVM, Docker.
_SWITCH_MACS = (
    "00:15:5d",
    "00:50:56",
    "00:0c:29",
    "00:05:69",
    "00:1c:14",
    "08:00:27",
    "0a:00:27",
    "00:1c:42",
    "52:54:00",
    "02:42",
)
# TAP-Windows (OpenVPN) adapters: 00-FF-...
_VPN_MACS = ("00:ff",)
# Carrier-grade NAT space: Tailscale and other overlay VPNs hand these out
_OVERLAY = ipaddress.IPv4Network("100.64.0.0/10")
# any public address: connecting a UDP socket to it only looks the route up
_ROUTE_PROBE = ("198.51.100.1", 9)


@dataclass(frozen=True)
class Adapter:
    """One network adapter: its name, hardware address and IPv4 addresses."""

    name: str
    mac: str | None
    addresses: tuple[str, ...]
    up: bool
    point_to_point: bool

    def virtual_because(self) -> str | None:
        """Why this adapter cannot lead to a meter on the LAN, or None if it can."""
        kind = self.kind()
        return None if kind is None else WHY[kind]

    def kind(self) -> str | None:
        """ "switch" (hypervisor, container), "vpn", "other" (loopback...), or None: real."""
        mac = self.mac or ""
        if _OTHER_NAME.search(self.name):
            return "other"
        if _VPN_NAME.search(self.name) or mac.startswith(_VPN_MACS) or self.point_to_point:
            return "vpn"
        if self.addresses and self.mac is None:
            return "vpn"  # WireGuard, Wintun and tun adapters have no hardware address
        if any(ipaddress.IPv4Address(a) in _OVERLAY for a in self.addresses):
            return "vpn"
        if _SWITCH_NAME.search(self.name) or mac.startswith(_SWITCH_MACS):
            return "switch"
        return None


WHY = {
    "switch": "a virtual switch (WSL, Hyper-V, a VM or containers)",
    "vpn": "a VPN or tunnel",
    "other": "a loopback or Bluetooth adapter",
}


def is_virtual_name(name: str) -> bool:
    """True when an adapter's name alone shows it is virtual (a switch, a VPN, loopback)."""
    return any(p.search(name) for p in (_SWITCH_NAME, _VPN_NAME, _OTHER_NAME))


def _usable(address: str) -> bool:
    ip = ipaddress.IPv4Address(address)
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def _mac(address: str) -> str | None:
    mac = address.replace("-", ":").lower()
    real = re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac) and mac != "00:00:00:00:00:00"
    return mac if real else None


def adapters(
    addrs: Mapping[str, Sequence[Any]] | None = None,
    stats: Mapping[str, Any] | None = None,
) -> list[Adapter]:
    """The PC's adapters with their usable IPv4 addresses (psutil's view unless given)."""
    addrs = psutil.net_if_addrs() if addrs is None else addrs
    stats = psutil.net_if_stats() if stats is None else stats
    found = []
    # an adapter may have counters and no address (down, or bound to a virtual switch)
    for name in {**stats, **addrs}:
        ipv4: list[str] = []
        mac = None
        for entry in addrs.get(name, ()):
            if entry.family == socket.AF_INET and _usable(entry.address):
                if entry.address not in ipv4:
                    ipv4.append(entry.address)
            elif entry.family == psutil.AF_LINK:
                mac = _mac(entry.address or "") or mac
        nic = stats.get(name)
        flags = str(getattr(nic, "flags", "")).split(",")
        found.append(
            Adapter(
                name,
                mac,
                tuple(ipv4),
                up=nic is None or bool(nic.isup),
                point_to_point="pointopoint" in flags,
            )
        )
    return found


def default_route_address() -> str | None:
    """The PC's own address on the route to the internet, or None without one."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(_ROUTE_PROBE)  # UDP: no packet is sent
        address = str(probe.getsockname()[0])
        return address if _usable(address) else None
    return None


def lan_adapters(found: Sequence[Adapter], default_address: str | None) -> list[Adapter]:
    """The adapters a meter can reach: the default route's first, then other real ones.

    The adapter that holds the default route is kept even when it is a virtual switch
    (a Hyper-V external switch carries the LAN), never when it is a VPN.
    """
    chosen: list[Adapter] = []
    for adapter in found:
        if not adapter.up or not adapter.addresses:
            continue
        kind = adapter.kind()
        holds_route = default_address in adapter.addresses
        if holds_route and kind in (None, "switch"):
            chosen.insert(0, adapter)
        elif kind is None:
            chosen.append(adapter)
    return chosen


def virtual_adapter_names(
    found: Sequence[Adapter], default_address: str | None = None
) -> frozenset[str]:
    """The names of adapters whose traffic is not the PC's own (loopback, virtual, VPN).

    Inside a virtual machine or a container every adapter looks virtual; there the one
    holding the default route is the PC's way out and stays counted. On a PC with a
    real adapter up, a virtual switch's traffic is that adapter's again.
    """
    kept: set[str] = set()
    if not any(a.up and a.kind() is None for a in found):
        kept = {a.name for a in lan_adapters(found, default_address)}
    return frozenset(a.name for a in found if a.kind() is not None and a.name not in kept)


def lan_addresses(
    found: Sequence[Adapter] | None = None, default_address: str | None = None
) -> list[str]:
    """The IPv4 addresses a meter on the LAN can reach, the default route's first.

    With no real adapter at all (a test namespace, an offline PC), every usable
    address is given rather than none; with no address at all, loopback.
    """
    if found is None:
        found = adapters()
        default_address = default_route_address()
    addresses: list[str] = []
    for adapter in lan_adapters(found, default_address) or [a for a in found if a.up]:
        addresses.extend(a for a in adapter.addresses if a not in addresses)
    return addresses or ["127.0.0.1"]
