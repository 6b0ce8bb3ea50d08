"""mDNS advertisement of the server, so devices find the PC by themselves."""

from __future__ import annotations

import ipaddress
import logging
import socket

import psutil
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from sysboy_tray import DEVICE_PATH, PROTOCOL_VERSION, SERVICE_TYPE

log = logging.getLogger(__name__)


def lan_addresses() -> list[str]:
    """The PC's IPv4 addresses a device could reach (no loopback, no link-local)."""
    found: list[str] = []
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family != socket.AF_INET:
                continue
            ip = ipaddress.IPv4Address(addr.address)
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
                continue
            if addr.address not in found:
                found.append(addr.address)
    return found or ["127.0.0.1"]


def instance_name() -> str:
    """The service instance name: the PC's name, as the user knows it."""
    name = socket.gethostname().split(".")[0] or "sysboy"
    return name[:60]


class Advertiser:
    """Registers the service on zeroconf's own loop thread-safely; says goodbye on stop."""

    def __init__(self, install_id: str) -> None:
        self.install_id = install_id
        self.info: ServiceInfo | None = None
        self._zc: AsyncZeroconf | None = None

    async def start(self, port: int, addresses: list[str] | None = None) -> ServiceInfo:
        """Advertise `port` with TXT proto, path and id; return what is advertised."""
        addresses = addresses or lan_addresses()
        self._zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
        self.info = ServiceInfo(
            SERVICE_TYPE,
            f"{instance_name()}.{SERVICE_TYPE}",
            port=port,
            properties={"proto": str(PROTOCOL_VERSION), "path": DEVICE_PATH, "id": self.install_id},
            server=f"{instance_name()}-{self.install_id}.local.",
            parsed_addresses=addresses,
        )
        await self._zc.async_register_service(self.info, allow_name_change=True)
        log.info("advertising %s on port %d at %s", self.info.name, port, ", ".join(addresses))
        return self.info

    async def stop(self) -> None:
        """Send the mDNS goodbye and close zeroconf."""
        if self._zc is None:
            return
        try:
            await self._zc.async_unregister_all_services()
        finally:
            await self._zc.async_close()
            self._zc = None
