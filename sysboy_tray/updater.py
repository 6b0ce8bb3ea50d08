"""Firmware updates over the proven link (docs/protocol.md, "Firmware updates").

The app carries the firmware; a `Bundle` is it built for the board (firmware_tool.build),
its version the app's own. `Updater` sends it to one meter: the manifest, then each chunk
the meter asks for, one at a time, each acknowledged. A meter answers the manifest by
restarting into its update mode (it closes the link with 1012) and links again to take the
files; the manifest goes again then. A lost link is waited out the same way, and the
transfer resumes where the meter says it stopped. Then the meter restarts into the new
version, which must link and say so; or the meter rolls back and says why.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from sysboy_tray import protocol
from sysboy_tray.errors import ControlError, ProtocolError
from sysboy_tray.firmware_tool import FirmwareError, read_bundle

if TYPE_CHECKING:
    from sysboy_tray.hub import Hub
    from sysboy_tray.session import DeviceSession

log = logging.getLogger(__name__)

# what brings a bad version back: a USB deploy writes these, an update never replaces them
LAUNCHER = frozenset({"boot.py", "main.py", "slots.mpy", "pointer.mpy"})
REPLY_TIMEOUT_S = 30.0  # a chunk's answer: the write, and a whole file read back and hashed
RELINK_TIMEOUT_S = 120.0  # a meter whose link dropped mid-transfer must be back by then
# the new version starts, joins, finds the PC and links (it has three minutes for that),
# or the old one comes back after a rollback
RETURN_TIMEOUT_S = 300.0
POLL_S = 0.2
# a meter back on another version that says nothing of a rollback this long after linking
# has rolled back all the same (its word may have been lost with a link)
SILENT_ROLLBACK_S = 15.0
# each chunk's answer is a message from the device, and a device may send 20 a second
# (docs/protocol.md): chunks go at most this often, leaving room for status and button
CHUNKS_PER_S = 15
# what one chunk carries: the protocol allows 2048 bytes, but each chunk costs the device
# its frame, the decoded text and the bytes at once, and smaller pieces fit a fragmented heap
SEND_BYTES = 1024
FINISHED = ("done", "failed", "rolled back")
# the meter's close when it restarts into its update mode (RFC 6455's "service restart")
CLOSE_RESTART = 1012
# restarts into update mode in a row that never got to a file: the meter cannot take it
MAX_RESTARTS = 3


def version_key(text: str) -> tuple[int, ...] | None:
    """`1.2.3` (and `1.2.3+local`, `v1.2`) as numbers to compare; None if it is no version."""
    found = re.fullmatch(r"v?(\d+(?:\.\d+)*)(?:[-+._][0-9A-Za-z.+_-]*)?", text.strip())
    return tuple(int(part) for part in found.group(1).split(".")) if found else None


def is_newer(offered: str, running: str) -> bool:
    """True when version `offered` is later than `running` (an unreadable one never is)."""
    new, old = version_key(offered), version_key(running)
    return new is not None and old is not None and new > old


@dataclass(frozen=True)
class Bundle:
    """A built firmware: its version, its files (path on the device -> bytes) and the
    SHA-256 its manifest gives each (what the meter checks the bytes against)."""

    version: str
    files: dict[str, bytes]
    hashes: dict[str, str]

    @property
    def total(self) -> int:
        return sum(len(data) for data in self.files.values())

    def manifest(self) -> protocol.Update:
        entries = tuple(
            protocol.UpdateFile(name, len(data), self.hashes[name])
            for name, data in self.files.items()
        )
        return protocol.Update(self.version, entries)

    def done_before(self, name: str, offset: int) -> int:
        """Bytes the meter holds when it asks for `offset` of file `name`."""
        done = 0
        for other, data in self.files.items():
            if other == name:
                return done + offset
            done += len(data)
        return done


def load_bundle(folder: Path) -> Bundle:
    """The bundle in `folder`, every file checked against its manifest's hash.

    Raises:
        FirmwareError: not a bundle, a file changed, or one an update cannot carry.
    """
    manifest = read_bundle(folder)
    version = str(manifest.get("firmware_version", ""))
    if version_key(version) is None:
        raise FirmwareError(f"{folder} does not say which firmware version it holds.")
    entries = [e for e in manifest["files"] if str(e["path"]) not in LAUNCHER]
    files = {str(e["path"]): (folder / str(e["path"])).read_bytes() for e in entries}
    bundle = Bundle(version, files, {str(e["path"]): str(e["sha256"]) for e in entries})
    try:
        text = protocol.encode(bundle.manifest())
        protocol.decode(text, "server")
    except ProtocolError as exc:
        raise FirmwareError(f"This firmware cannot be sent over Wi-Fi: {exc}.") from exc
    return bundle


@dataclass
class UpdateState:
    """One meter's update, as the tray, `sysboy status` and the CLI show it."""

    version: str
    # starting, preparing, sending, waiting, restarting, done, failed, rolled back
    state: str = "starting"
    done: int = 0
    total: int = 0
    detail: str = ""

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def text(self) -> str:
        """In a few words: "updating to 0.2.0: 45 %", "updated to 0.2.0", ..."""
        if self.state in ("starting", "sending"):
            return f"updating to {self.version}: {self.percent} %"
        if self.state == "preparing":
            return f"updating to {self.version}: the meter restarts to take it"
        if self.state == "waiting":
            return f"update to {self.version} paused at {self.percent} %: waiting for the meter"
        if self.state == "restarting":
            return f"restarting into {self.version}"
        if self.state == "done":
            return f"updated to {self.version}"
        return f"update to {self.version} {self.state}: {self.detail}"


class Updater:
    """At most one update per meter at a time; everything here runs on the loop thread."""

    def __init__(self, hub: Hub, bundle: Callable[[], Bundle], version: str) -> None:
        """`bundle`: builds or reads the bundle (called in a worker thread); `version`: its
        version, known without building it."""
        self.hub = hub
        self._bundle = bundle
        self.version = version
        self.states: dict[str, UpdateState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def available(self, fw: str) -> bool:
        """True when a meter running `fw` would get a newer version from this app."""
        return is_newer(self.version, fw)

    def start(self, device_id: str | None) -> str:
        """Start updating a linked meter (the only one when None); its id.

        Raises:
            ControlError: no such meter linked, or it is being updated already.
        """
        session = self.hub.session(device_id)
        device_id = session.device_id
        running = self._tasks.get(device_id)
        if running is not None and not running.done():
            raise ControlError(f"device '{device_id}' is being updated already")
        self.states[device_id] = UpdateState(self.version)
        self._tasks[device_id] = asyncio.create_task(
            self._run(device_id), name=f"update-{device_id}"
        )
        self.hub.changed()
        return device_id

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, device_id: str) -> None:
        state = self.states[device_id]
        try:
            await self._update(device_id, state)
        except (FirmwareError, ControlError, TimeoutError) as exc:
            state.state, state.detail = "failed", str(exc) or "the meter did not answer in time"
        log.info("device %s: %s", device_id, state.text())
        self.hub.changed()

    def _set(self, state: UpdateState, name: str, done: int | None = None) -> None:
        state.state = name
        if done is not None:
            state.done = done
        self.hub.changed()

    async def _update(self, device_id: str, state: UpdateState) -> None:
        bundle = await asyncio.to_thread(self._bundle)
        state.version, state.total = bundle.version, bundle.total
        self._set(state, "sending")
        self.hub.update_notes.pop(device_id, None)
        restarts, done = 0, -1  # restarts into update mode with no byte taken between them
        while True:
            session = await self._linked(device_id, RELINK_TIMEOUT_S)
            try:
                status = await self._transfer(session, bundle, state)
            except (ConnectionClosed, ConnectionError, TimeoutError) as exc:
                if session.ws.close_code == CLOSE_RESTART:
                    restarts = restarts + 1 if state.done <= done else 1
                    done = state.done
                    if restarts >= MAX_RESTARTS:
                        raise ControlError(
                            f"the meter restarted {MAX_RESTARTS} times to take the update "
                            "and took nothing"
                        ) from None
                    log.info("device %s: restarting into its update mode", device_id)
                    self._set(state, "preparing")
                    continue
                log.info("device %s: update paused (%r); resuming when it links", device_id, exc)
                self._set(state, "waiting")  # the meter resumes where it stopped
                continue
            if status.state == "refused":
                state.state, state.detail = "failed", f"the meter refused it: {status.reason}"
                return
            break
        self._set(state, "restarting", bundle.total)
        await self._came_back(device_id, bundle.version, state, session)

    async def _transfer(
        self, session: DeviceSession, bundle: Bundle, state: UpdateState
    ) -> protocol.UpdateStatus:
        """Send the manifest, then every chunk asked for; the meter's last word."""
        status = await session.update_step(bundle.manifest(), REPLY_TIMEOUT_S)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while status.state == "receiving":
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = loop.time() + 1 / CHUNKS_PER_S
            data = bundle.files.get(status.file or "")
            offset = status.offset or 0
            if data is None or offset >= len(data):
                raise ControlError(f"the meter asked for a part the bundle lacks: {status.file}")
            self._set(state, "sending", bundle.done_before(status.file or "", offset))
            piece = base64.b64encode(data[offset : offset + SEND_BYTES]).decode()
            chunk = protocol.Chunk(status.file or "", offset, piece)
            status = await session.update_step(chunk, REPLY_TIMEOUT_S)
        return status

    async def _linked(self, device_id: str, timeout: float) -> DeviceSession:
        """The meter's link, once it is there (proven: only proven links reach the hub)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    session = self.hub.sessions.get(device_id)
                    if session is not None and not session.ended:
                        return session
                    await asyncio.sleep(POLL_S)
        except TimeoutError:
            raise ControlError(
                f"the meter did not link again within {timeout / 60:g} minutes: start the "
                "update again when it is back, and it resumes where it stopped"
            ) from None

    async def _came_back(
        self, device_id: str, version: str, state: UpdateState, old: DeviceSession
    ) -> None:
        """Wait for the meter to link again and say how the new version fared."""
        loop = asyncio.get_running_loop()
        seen: tuple[DeviceSession, float] | None = None  # a new link on another version
        try:
            async with asyncio.timeout(RETURN_TIMEOUT_S):
                while True:
                    note = self.hub.update_notes.get(device_id)
                    if note is not None and note.state == "rolled_back":
                        state.state = "rolled back"
                        state.detail = f"the meter went back to its previous version: {note.reason}"
                        return
                    session = self.hub.sessions.get(device_id)
                    hello = session.hello if session is not None else None
                    if session is None or session is old or session.ended or hello is None:
                        seen = None
                    elif hello.fw == version:
                        state.state = "done"
                        return
                    elif seen is None or seen[0] is not session:
                        seen = (session, loop.time())
                    elif loop.time() - seen[1] >= SILENT_ROLLBACK_S:
                        state.state = "rolled back"
                        state.detail = f"the meter runs {hello.fw} again"
                        return
                    await asyncio.sleep(POLL_S)
        except TimeoutError:
            raise ControlError(
                f"the meter did not come back within {RETURN_TIMEOUT_S / 60:g} minutes"
            ) from None
