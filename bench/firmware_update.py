"""A firmware update received by the whole device, on MicroPython (run by bench_update.py).

    micropython bench/firmware_update.py FIRMWARE_DIR PORT [device|link]

`device`: builds the device as app.py does (the supervisor's Device, its link and needles)
and hands every frame to the link's own handler (`Link.on_message`); `alone`: only the
update's own path, small enough for a 64K heap as bench_firmware.py's link alone is: each
frame decoded (protocol.py) and handed to the receiver (ota.py) as Link._firmware does.
Then it links to
the WebSocket server at 127.0.0.1:PORT, and hands every frame the server sends to the
link's own handler (`Link.on_message`), which answers each with `update_status`. The
handshake is not run here: the link is marked proven, as the handshake would leave it.
After each frame the live heap is measured (after a collection) and the free heap without
one. Prints one JSON line of figures when the link restarts the board into the update.
"""

import asyncio
import gc
import json
import sys
import time

sys.path.insert(0, sys.argv[1])

import protocol
import wsclient

MODE = sys.argv[3] if len(sys.argv) > 3 else "device"


class Dac:
    """The output boundary: takes writes and keeps the last one."""

    def __init__(self):
        self.value = 0.0

    def write(self, fraction):
        self.value = fraction


class Alone:
    """The update's path without the rest of the link: decode, receive, answer."""

    def __init__(self):
        import ota

        self.receiver = ota.Receiver()

    async def on_message(self, ws, text):
        msg = protocol.decode(text, "server")
        if msg["type"] == "update":
            status = self.receiver.begin(msg["version"], msg["files"])
        else:
            status = self.receiver.chunk(msg["file"], msg["offset"], msg["data"])
        msg = None
        status["type"] = "update_status"
        await ws.send(protocol.encode(status))
        if status["state"] == "restarting":
            raise SystemExit(3)


class Link:
    """Stands in for the device when only the update's path runs."""

    def __init__(self):
        self.link = Alone()


def build_device():
    if MODE == "alone":
        return Link()
    import app
    import config

    device = app.Device(config.defaults())
    for one in device.needles.all:
        one.output = Dac()
    return device


async def main(port):
    if MODE == "alone":
        wsclient.reserve()  # the receive buffer, taken first as the device takes it at boot
    device = build_device()
    rx = getattr(device.link, "rx", None)  # the device's own, taken when its link is made
    gc.collect()
    heap_linked = gc.mem_alloc()
    ws = await wsclient.connect("127.0.0.1", port, "/device", 5, rx)
    device.link.proven = True  # what the handshake leaves behind
    hello = {
        "type": "hello",
        "proto": 1,
        "id": "bench",
        "fw": "0.1.0",
        "board": "sim",
        "output": "sim",
        "calibration": [[0.0, 0.0], [100.0, 1.0]],
    }
    await ws.send(protocol.encode(hello))
    figures = {"heap_linked": heap_linked, "live_max": 0, "free_min": None, "frames": 0}
    took_us = 0
    try:
        while True:
            text = await asyncio.wait_for(ws.recv(), 30)
            free = gc.mem_free()
            if figures["free_min"] is None or free < figures["free_min"]:
                figures["free_min"] = free
            started = time.ticks_us()
            await device.link.on_message(ws, text)
            took_us += time.ticks_diff(time.ticks_us(), started)
            text = None
            figures["frames"] += 1
            gc.collect()
            figures["live_max"] = max(figures["live_max"], gc.mem_alloc())
    except SystemExit:  # the link restarts the board into the new version
        figures["restarted"] = True
    figures["per_frame_us"] = took_us / max(1, figures["frames"])
    figures["heap_total"] = gc.mem_alloc() + gc.mem_free()
    print(json.dumps(figures))


asyncio.run(main(int(sys.argv[2])))
