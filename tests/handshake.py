"""The meter's side of the handshake, for test meters, probes and benches (docs/protocol.md).

`pair` does what `sysboy firmware deploy` does over USB: it stores a fresh key for the id in
the PC's pairs file and hands the meter its half (the key and the PC's id).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from sysboy_tray import protocol
from sysboy_tray.config import Paths
from sysboy_tray.pairing import PairStore


@dataclass(frozen=True)
class Pairing:
    """The meter's half of a pairing."""

    key: str
    pc: str


def pc_id(paths: Paths | None = None) -> str:
    """The PC's install id, as the running app saved it."""
    paths = paths or Paths.default()
    return str(json.loads(paths.settings_file.read_text("utf-8"))["install_id"])


def pair(device_id: str, paths: Paths | None = None, pc: str | None = None) -> Pairing:
    """Pair `device_id` with the PC whose folders are `paths` (the test's own by default);
    a meter paired already keeps its key."""
    paths = paths or Paths.default()
    store = PairStore(paths.pairs_file)
    key = store.pair(device_id, keep=True)
    return Pairing(key, pc or pc_id(paths))


def hello(
    device_id: str,
    pairing: Pairing | None,
    *,
    calibration: list[list[float]] | None = None,
    needles: int = 1,
    name: str | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """A v2 device hello; `pc` names the paired PC (absent when `pairing` is None)."""
    points = calibration or [[0, 0], [100, 1]]
    out: dict[str, Any] = {
        "type": "hello",
        "proto": 2,
        "id": device_id,
        "fw": "1.0.0",
        "board": "sim",
        "nonce": nonce or secrets.token_hex(16),
        "needles": [{"output": "sim", "calibration": points} for _ in range(needles)],
    }
    if name is not None:
        out["name"] = name
    if pairing is not None:
        out["pc"] = pairing.pc
    return out


def proof(mine: dict[str, Any], theirs: dict[str, Any], pairing: Pairing) -> dict[str, Any]:
    """The meter's `proof`, after checking the PC's (AssertionError when it is wrong)."""
    assert theirs.get("type") == "hello", theirs
    assert theirs.get("paired") is True, theirs
    assert theirs.get("pc") == pairing.pc, theirs
    args = (pairing.key, mine["nonce"], theirs["nonce"], mine["id"], pairing.pc)
    assert protocol.same_proof(theirs.get("proof", ""), protocol.pc_proof(*args)), theirs
    return {"type": "proof", "mac": protocol.device_proof(*args)}


class SyncSocket(Protocol):
    def send(self, message: str) -> None: ...
    def recv(self, timeout: float | None = None) -> str | bytes: ...


class AsyncSocket(Protocol):
    async def send(self, message: str) -> None: ...
    async def recv(self) -> str | bytes: ...


def link(ws: SyncSocket, device_id: str, pairing: Pairing, **hello_args: Any) -> dict[str, Any]:
    """Say hello and prove the key on a sync client; the PC's hello."""
    mine = hello(device_id, pairing, **hello_args)
    ws.send(json.dumps(mine))
    theirs: dict[str, Any] = json.loads(ws.recv(timeout=10))
    ws.send(json.dumps(proof(mine, theirs, pairing)))
    return theirs


async def alink(
    ws: AsyncSocket, device_id: str, pairing: Pairing, **hello_args: Any
) -> dict[str, Any]:
    """Say hello and prove the key on an asyncio client; the PC's hello."""
    mine = hello(device_id, pairing, **hello_args)
    await ws.send(json.dumps(mine))
    theirs: dict[str, Any] = json.loads(await ws.recv())
    await ws.send(json.dumps(proof(mine, theirs, pairing)))
    return theirs
