"""The device's receive path, timed on MicroPython (run by bench_firmware.py).

    micropython bench/firmware_link.py FIRMWARE_DIR PORT FRAMES [app|app2|link]

Links to the WebSocket server at 127.0.0.1:PORT, sends hello, then for each sample
frame does what the firmware's session does: recv under a read timeout, then either
the supervisor's own handler (`app`: decode, metric, needle, LED; `app2`: the same on a
two-needle meter, each needle stepped) or only decode and needle (`link`: small enough
for a 64K heap), and a step of the ballistics.
Prints one JSON line of figures.
"""

import asyncio
import gc
import json
import sys
import time

sys.path.insert(0, sys.argv[1])

import needle
import protocol
import wsclient

FRAME = '{"type":"vram","value":61.5}'
WARMUP = 500
CURVED = [[0.0, 0.0], [50.0, 0.8], [100.0, 1.0]]


class Dac:
    """The output boundary: takes writes and keeps the last one."""

    def __init__(self):
        self.value = 0.0

    def write(self, fraction):
        self.value = fraction


def bare_json_us(count):
    """The best of three runs of `count` bare json.loads of FRAME, per call."""
    loads = json.loads
    best = None
    for _ in range(3):
        gc.collect()
        started = time.ticks_us()
        for _ in range(count):
            loads(FRAME)
        took = time.ticks_diff(time.ticks_us(), started) / count
        best = took if best is None else min(best, took)
    return best


async def receive(ws, meter, count):
    decode = protocol.decode
    for _ in range(count):
        text = await asyncio.wait_for(ws.recv(), 30)
        msg = decode(text, "server")
        meter.show(msg["value"])
        meter.step(20)


async def receive_in_app(ws, device, count):
    needles = device.needles.all
    for _ in range(count):
        text = await asyncio.wait_for(ws.recv(), 30)
        await device.link.on_message(ws, text)
        for meter in needles:
            meter.step(20)


async def main(port, frames, mode):
    gc.collect()
    heap_start = gc.mem_alloc()
    ws = await wsclient.connect("127.0.0.1", port, "/device", timeout=5)
    hello = {
        "type": "hello",
        "proto": 1,
        "id": "bench",
        "fw": "bench",
        "board": "sim",
        "output": "sim",
        "calibration": CURVED,
    }
    await ws.send(protocol.encode(hello))
    if mode in ("app", "app2"):
        import config
        import supervisor

        cfg = config.with_needle(config.defaults(), 1, calibration=CURVED)
        if mode == "app2":
            cfg["needles"] = cfg["needles"] + [config.needle(26, "dac", CURVED)]
        device = supervisor.Device(cfg)
        for one in device.needles.all:
            one.output = Dac()
        meter = device.needle

        async def run(count):
            await receive_in_app(ws, device, count)

    else:
        meter = needle.Needle(Dac(), CURVED, 300)

        async def run(count):
            await receive(ws, meter, count)

    await run(WARMUP)
    gc.collect()
    heap_steady = gc.mem_alloc()
    started = time.ticks_us()
    await run(frames)
    per_frame_us = time.ticks_diff(time.ticks_us(), started) / frames
    gc.collect()
    heap_after = gc.mem_alloc()
    await ws.send(
        protocol.encode({"type": "status", "rssi": None, "heap": gc.mem_free(), "uptime": 1})
    )
    await ws.close()
    json_loads_us = bare_json_us(frames)
    gc.collect()  # the heap really free, not what the timing loop's garbage left of it
    print(
        json.dumps(
            {
                "frames": frames,
                "per_frame_us": per_frame_us,
                "json_loads_us": json_loads_us,
                "heap_start": heap_start,
                "heap_steady": heap_steady,
                "heap_after": heap_after,
                "heap_free_after": gc.mem_free(),
                "needle": meter.position,
            }
        )
    )


asyncio.run(main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "link"))
