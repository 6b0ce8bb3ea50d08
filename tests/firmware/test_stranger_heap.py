"""A stranger on the LAN cannot fill a meter's heap with text of new characters.

MicroPython interns each character that iterating or indexing a str yields, and an interned
string stays in the heap for as long as the board runs. A stranger on 127.0.0.2 answers the
meter's mDNS queries first, and each of its WebSocket servers sends one frame the meter
must refuse before the key is proven: a frame of brackets whose string holds 1,150
characters. The same meter runs twice: once with the same characters every time, once with
new ones every time. Linked to its own PC afterwards, it reports its free heap in its
`status` (after a collection): the new characters must have cost next to nothing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.conftest import scaled
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.firmware.fake_pc import PC
from tests.firmware.test_hostile_pc import STRANGER, stranger_first

STRANGERS = 4
CHARACTERS = 1150  # three UTF-8 bytes each: with the brackets, a 3.8 KB frame


def brackets_and_text(first: int) -> str:
    """A frame of over 100 arrays (the meter counts them before parsing) and a string of
    CHARACTERS characters from U+`first` on."""
    text = "".join(chr(c) for c in range(first, first + CHARACTERS))
    frame = {"type": "cpu", "value": 1, "x": [[]] * 101, "note": text}
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


async def heap_after_strangers(folder: Path, new_characters: bool) -> int:
    """The meter's free heap, in its first status to its own PC, after STRANGERS strangers
    each sent it one frame of characters (new ones each time, or the same ones)."""
    strangers = [await PC().start(host=STRANGER) for _ in range(STRANGERS)]
    pc = await PC().start()
    responder = stranger_first([s.port for s in strangers], pc.port)
    firmware_settings(folder)
    env = {"SYSBOY_MDNS_ADDR": f"{STRANGER}:{responder.port}"}
    try:
        async with SimDevice(folder, **env) as device:
            for n, stranger in enumerate(strangers):
                link = await stranger.link(timeout=60)
                assert (await link.recv())["type"] == "hello"
                first = 0x4E00 + (CHARACTERS * n if new_characters else 0)
                await link.ws.send(brackets_and_text(first))
                await link.ws.wait_closed()
                assert link.ws.protocol.close_rcvd is not None
                assert link.ws.protocol.close_rcvd.code == 1008  # refused, as a stranger
                link.end()
            link = await pc.link(timeout=60)
            await link.greet()
            status = await link.recv_type("status", timeout=30)
            refused = sum("bad message before the key was proven" in line for line in device.lines)
            assert refused == STRANGERS, device.output()
            link.end()
            return int(status["heap"])
    finally:
        responder.close()
        for server in [*strangers, pc]:
            await server.stop()


def test_new_characters_from_strangers_stay_out_of_the_heap(tmp_path: Path) -> None:
    async def body() -> tuple[int, int]:
        same = await heap_after_strangers(tmp_path / "same", new_characters=False)
        new = await heap_after_strangers(tmp_path / "new", new_characters=True)
        return same, new

    same, new = asyncio.run(asyncio.wait_for(body(), scaled(300)))
    print(f"\nfree heap once linked: {same} B after the same characters, {new} B after new ones")
    # 3 x 1,150 characters more would keep about 40 KB if each were interned
    assert new >= same - 4096, f"{same - new} B of the heap went to the strangers' characters"
