"""mDNS advertisement of the server, so devices find the PC by themselves."""

from __future__ import annotations

import logging
import socket

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from sysboy_tray import DEVICE_PATH, PROTOCOL_VERSION, SERVICE_TYPE
from sysboy_tray.netifs import lan_addresses

__all__ = ["Advertiser", "instance_name", "lan_addresses"]

log = logging.getLogger(__name__)


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
