"""A real websockets server on loopback playing the PC, for firmware tests and benchmarks.

Each device connection is handed to the caller as a `Link` to script the conversation.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from sysboy_tray import protocol
from tests.conftest import scaled

# the pairing every simulated meter gets by default (`firmware_settings`), as a USB deploy
# would write it: this key, shared with the PC whose install id is TEST_PC
TEST_KEY = "a5" * 32
TEST_PC = "test-pc-1"
WELCOME = {
    "type": "welcome",
    "metrics": [{"id": "cpu", "label": "CPU", "unit": "%"}],
    "needles": ["cpu"],
}


class PC:
    """A real WebSocket server on loopback; each device connection is handed to the test."""

    def __init__(self) -> None:
        self.links: asyncio.Queue[Link] = asyncio.Queue()
        self.all: list[Link] = []
        self.server: Server | None = None
        self.port = 0

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> PC:
        """Listen on `host` (a stranger's: 127.0.0.2) and `port` (0: any free one)."""
        self.server = await serve(self._handle, host, port)
        self.port = next(iter(self.server.sockets)).getsockname()[1]
        return self

    async def stop(self, abort: bool = False) -> None:
        """Stop listening; `abort` drops every link without a close frame (a crash)."""
        assert self.server is not None
        if abort:
            for ws in list(self.server.connections):
                ws.transport.abort()
        for link in self.all:
            link.end()
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        link = Link(ws)
        self.all.append(link)
        await self.links.put(link)
        await link.done.wait()

    async def link(self, timeout: float = 20) -> Link:
        return await asyncio.wait_for(self.links.get(), scaled(timeout))


class Link:
    """One device connection: what it sent, and a way to talk back."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.done = asyncio.Event()

    async def recv(self, timeout: float = 15) -> dict[str, Any]:
        text = await asyncio.wait_for(self.ws.recv(), scaled(timeout))
        assert isinstance(text, str)
        # the PC's own decoder must accept every frame the device sends
        protocol.decode(text, "device")
        message: dict[str, Any] = json.loads(text)
        return message

    async def recv_type(self, kind: str, timeout: float = 15) -> dict[str, Any]:
        """The next message of type `kind`, skipping heartbeats."""
        while True:
            message = await self.recv(timeout)
            if message["type"] == kind:
                return message
            assert message["type"] == "status", message

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def greet(self, key: str = TEST_KEY, pc: str = TEST_PC) -> dict[str, Any]:
        """Take the device's hello, prove the key, check the device's proof, welcome it."""
        hello = await self.recv()
        assert hello["type"] == "hello", hello
        nonce = secrets.token_hex(16)
        args = (key, hello["nonce"], nonce, hello["id"], pc)
        await self.send(
            {
                "type": "hello",
                "proto": 2,
                "server": "test-pc",
                "pc": pc,
                "nonce": nonce,
                "paired": True,
                "proof": protocol.pc_proof(*args),
            }
        )
        answer = await self.recv()
        assert answer["type"] == "proof", answer
        assert protocol.same_proof(answer["mac"], protocol.device_proof(*args)), answer
        await self.send(WELCOME)
        return hello

    def end(self) -> None:
        self.done.set()
