"""Firmware updates on the whole firmware under MicroPython: rollbacks and refusals.

The board is the sim HAL's: its flash is a folder, a reset restarts the process. The
versions on trial are written into the flash as an update leaves them (ota.py's switch).
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from tests.conftest import scaled
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.firmware.fake_pc import PC, Link
from tests.firmware.portal_sim import firmware_constant
from tests.firmware.upy import FIRMWARE


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), scaled(120)))


def pointer(slot: str, version: str, **more: Any) -> str:
    """One copy of slots.py's pointer, as its write() makes it."""
    value = {"slot": slot, "version": version, "previous": "", "previous_version": ""}
    value.update(trial=True, boots=0, seq=1, **more)
    body = json.dumps(value)
    check = binascii.hexlify(hashlib.sha256(body.encode()).digest()[:8]).decode()
    return body + "\n" + check


def saved_pointer(flash: Path) -> dict[str, Any]:
    """The newest whole copy of the pointer."""
    best: dict[str, Any] = {}
    for name in ("ota-1.json", "ota-2.json"):
        path = flash / name
        if path.exists():
            body = path.read_text().rpartition("\n")[0]
            value = json.loads(body)
            if value["seq"] > best.get("seq", 0):
                best = value
    return best


def on_trial(flash: Path, version: str, app_source: str | None = None) -> Path:
    """A version on trial in slot a: the firmware's own sources, or one whose app.py is
    `app_source`."""
    slot = flash / "ota" / "a"
    if app_source is None:
        shutil.copytree(FIRMWARE, slot, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    else:
        slot.mkdir(parents=True)
        (slot / "app.py").write_text(app_source)
    (flash / "ota-1.json").write_text(pointer("a", version))
    return slot


def test_a_version_that_crashes_at_start_is_rolled_back_after_three_starts(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        pc = await PC().start()
        flash = tmp_path / "device"
        firmware_settings(flash, server=f"127.0.0.1:{pc.port}")
        on_trial(flash, "0.2.0", "raise ImportError('a module this build lacks')\n")
        async with SimDevice(flash) as device:
            link = await pc.link(timeout=60)  # the previous version, after three resets
            hello = await link.recv()
            assert hello["type"] == "hello" and hello["fw"] == "0.1.0"
            assert device.resets == 3
            starts = [line for line in device.lines if line.startswith("update: version 0.2.0")]
            assert starts == [
                "update: version 0.2.0 on trial, start 1",
                "update: version 0.2.0 on trial, start 2",
                "update: version 0.2.0 on trial, start 3",
                "update: version 0.2.0 it did not start 3 times in a row; back to the previous one",
            ]
            saved = saved_pointer(flash)
            assert saved["slot"] == "" and not saved["trial"]
            # what the PC hears on the first proven link (link.py's proven_link)
            assert saved["told"] == {
                "state": "rolled_back",
                "version": "0.2.0",
                "reason": "it did not start 3 times in a row",
            }
            link.end()
        await pc.stop()

    run(body)


def test_a_version_that_never_links_is_rolled_back_when_its_time_is_up(tmp_path: Path) -> None:
    async def body() -> None:
        pc = await PC().start()
        flash = tmp_path / "device"
        # the new version looks for its PC where nobody answers
        firmware_settings(flash, server="127.0.0.1:9")
        on_trial(flash, "0.2.0")
        async with SimDevice(flash, SYSBOY_SIM_TRIAL_S="3") as device:
            await device.restarted(1, timeout=30)
            assert "update: no link to the PC within 3 s: back to the previous version" in (
                device.lines
            )
            saved = saved_pointer(flash)
            assert saved["slot"] == "" and saved["told"] == {
                "state": "rolled_back",
                "version": "0.2.0",
                "reason": "it did not link to the PC within 3 s",
            }
            # the previous version (the root's) starts, not on trial: no deadline any more
            await device.wait_for(
                lambda: device.lines.count("boot: sim micropython, reset cause: power on") == 2,
                "the previous version to start",
            )
            await asyncio.sleep(scaled(5))
            assert device.resets == 1
        await pc.stop()

    run(body)


def test_an_update_from_a_pc_that_has_not_proven_the_key_writes_nothing(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        pc = await PC().start()
        flash = tmp_path / "device"
        firmware_settings(flash, server=f"127.0.0.1:{pc.port}")
        before = {p.name: p.read_bytes() for p in flash.iterdir()}
        data = b"import machine\nmachine.reset()\n"
        digest = hashlib.sha256(data).hexdigest()
        async with SimDevice(flash):
            link = await pc.link()
            hello = await link.recv()
            assert hello["type"] == "hello"
            # a PC that skips the handshake (it has no key) and sends an update at once
            answers = []
            try:
                await link.send(
                    {"type": "update", "version": "9.9.9", "files": [["app.mpy", 31, digest]]}
                )
                chunk = binascii.b2a_base64(data).decode().strip()
                await link.send({"type": "chunk", "file": "app.mpy", "offset": 0, "data": chunk})
                while len(answers) < 2:
                    message = await link.recv()
                    if message["type"] == "update_status":
                        answers.append(message)
            except (ConnectionClosed, TimeoutError):  # closed on it: refused all the same
                pass
            assert all(a["state"] == "refused" for a in answers), answers
            link.end()
        await pc.stop()
        after = {p.name: p.read_bytes() for p in flash.iterdir() if p.name != "button"}
        assert after == before  # no file written: no ota folder, no pointer, same settings

    run(body)


async def _step(link: Link, files: dict[str, bytes], status: dict[str, Any]) -> dict[str, Any]:
    """Send the chunk `status` asks for (1 KiB, as the PC does); the meter's answer."""
    piece = files[status["file"]][status["offset"] : status["offset"] + 1024]
    data = binascii.b2a_base64(piece).decode().strip()
    await link.send(
        {"type": "chunk", "file": status["file"], "offset": status["offset"], "data": data}
    )
    return await link.recv_type("update_status")


def test_update_mode_links_again_after_a_cut_and_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    files = {"app.mpy": bytes(range(256)) * 12, "lib/extra.mpy": b"x" * 1500}
    update = {
        "type": "update",
        "version": "0.2.0",
        "files": [[n, len(d), hashlib.sha256(d).hexdigest()] for n, d in files.items()],
    }

    async def body() -> None:
        pc = await PC().start()
        flash = tmp_path / "device"
        firmware_settings(flash, server=f"127.0.0.1:{pc.port}")
        # what a linked meter leaves before it restarts into update mode (notes.ask_update)
        note = flash / str(firmware_constant("notes.py", "UPDATE"))
        note.write_text(f"127.0.0.1 {pc.port} /device")
        async with SimDevice(flash) as device:
            link = await pc.link(timeout=60)
            await link.greet()
            await link.send(update)
            status = await link.recv_type("update_status")
            assert status == {
                "type": "update_status",
                "state": "receiving",
                "file": "app.mpy",
                "offset": 0,
            }
            for _ in range(2):
                status = await _step(link, files, status)
            assert (status["file"], status["offset"]) == ("app.mpy", 2048)
            link.ws.transport.abort()  # the link is cut without a word
            link = await pc.link(timeout=30)  # update mode links again, to the same PC
            await link.greet()
            await link.send(update)
            again = await link.recv_type("update_status")
            assert again == status  # where it stopped: nothing is sent twice
            while again["state"] == "receiving":
                again = await _step(link, files, again)
            assert again == {"type": "update_status", "state": "restarting", "version": "0.2.0"}
            await device.restarted(1, timeout=30)
            assert not note.exists()  # taken at the start: the next one is not update mode
            for name, data in files.items():
                assert (flash / "ota" / "a" / name).read_bytes() == data
            assert saved_pointer(flash)["slot"] == "a"
            ended = [x for x in device.lines if x.startswith("update: link ended")]
            assert len(ended) == 1, device.output()
            link.end()
        await pc.stop()

    run(body)
