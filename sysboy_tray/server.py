"""The WebSocket server: `/device` for meters, `/control` for the local control API."""

from __future__ import annotations

import asyncio
import errno
import http
import logging
import socket
from typing import Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from sysboy_tray import CONTROL_PATH, DEVICE_PATH, protocol
from sysboy_tray.errors import CannotListen
from sysboy_tray.hub import Hub
from sysboy_tray.limits import ACCEPT_BATCH, ConnectionGuard, deepen_listen_queue, guarded
from sysboy_tray.session import DeviceSession

log = logging.getLogger(__name__)


class ControlHandler(Protocol):
    """The local control API: it vets each connection at the HTTP upgrade, then serves it."""

    def admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """None to let the upgrade go on, or the refusal to send instead."""
        ...

    async def serve(self, ws: ServerConnection) -> None:
        """Serve one admitted connection until it closes."""
        ...


def _refusal(port: int, taken: bool) -> str:
    if taken:
        return (
            f"port {port} is taken by another program: choose another with --port, "
            "or leave --port out to use a free one"
        )
    why = (
        "ports below 1024 need administrator rights"
        if port < 1024
        else "the system keeps it for itself"
    )
    return f"port {port} is not allowed ({why}): choose one from 1024 to 65535"


class DeviceServer:
    """Listens on all interfaces; refuses browsers (any Origin) with 403.

    Connections past the guard's caps are closed at accept, before the handshake.
    """

    def __init__(
        self,
        hub: Hub,
        control: ControlHandler | None = None,
        guard: ConnectionGuard | None = None,
    ) -> None:
        self.hub = hub
        self.control = control
        self.guard = guard or ConnectionGuard()
        self._server: Server | None = None
        self.port = 0

    async def start(self, port: int, host: str | None = None, may_move: bool = True) -> int:
        """Listen on `port`; return the real port.

        Raises:
            CannotListen: `port` is taken or not allowed, and may not move (the user
                named it); a port that may move becomes a free one instead.
        """
        try:
            self._server = await self._serve(host, port)
        except OSError as exc:
            taken = exc.errno in (errno.EADDRINUSE, 10048)  # 10048: WSAEADDRINUSE
            denied = exc.errno in (errno.EACCES, 10013)  # 10013: WSAEACCES
            if port == 0 or not (taken or denied):
                raise
            if not may_move:
                raise CannotListen(_refusal(port, taken)) from exc
            log.warning("port %d is taken (%s); using a free port instead", port, exc.strerror)
            self._server = await self._serve(host, 0)
        sockets = list(self._server.sockets)
        for listening in sockets:
            deepen_listen_queue(listening)
        self.port = sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, host: str | None, port: int) -> Server:
        if host is None:
            # one socket for IPv4 only keeps a taken port from half-binding on IPv6
            host = "0.0.0.0"
        return await serve(
            self._handle,
            host,
            port,
            origins=[None],
            max_size=protocol.MAX_FRAME_BYTES,
            max_queue=8,
            compression=None,
            process_request=self._route,
            open_timeout=10,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            family=socket.AF_INET,
            create_connection=guarded(self.guard),
            backlog=ACCEPT_BATCH,
        )

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == DEVICE_PATH:
            return None
        if path == CONTROL_PATH and self.control is not None:
            return self.control.admit(connection, request)
        return connection.respond(http.HTTPStatus.NOT_FOUND, f"no WebSocket at {path}\n")

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path.split("?", 1)[0] if ws.request else ""
        if path == CONTROL_PATH and self.control is not None:
            await self.control.serve(ws)
            return
        await DeviceSession(self.hub, ws).run()

    async def stop(self) -> None:
        """Park every needle, close every link with 1001, stop listening."""
        if self._server is None:
            return
        sessions = list(self.hub.sessions.values())
        await asyncio.gather(*(s.park_now("quit") for s in sessions))
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        self.guard.close()
