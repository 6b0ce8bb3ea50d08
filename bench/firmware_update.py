"""A firmware update received by the device, on MicroPython (run by bench_update.py).

    micropython bench/firmware_update.py FIRMWARE_DIR PORT [device|alone]

`device`: the board in update mode, as app.py starts it (updating.py: the settings loaded
and dropped, the needles' outputs, the receive buffer), and every frame handed to its own
handler (`Updating.on_message`); `alone`: only the update's own path, each frame decoded
(protocol.py) and handed to the receiver (ota.py). Then it links to the WebSocket server
at 127.0.0.1:PORT and hands every frame the server sends to that handler, which answers
each with `update_status`. The join and the handshake are not run here (update mode
drops their code before the first frame). After each frame the live heap is measured
(after a collection) and the free heap without one. Prints one JSON line of figures when
the board restarts into the new version.
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


class Alone:
    """The update's path alone: decode, receive, answer."""

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


def build(port):
    """What takes the frames, and its receive buffer."""
    if MODE == "alone":
        wsclient.reserve()  # the receive buffer, taken first as the device takes it at boot
        return Alone(), None
    import config

    cfg = config.defaults()
    del sys.modules["config"]  # as app.py drops it before the mode starts
    gc.collect()
    gc.threshold(4096)  # app.py's
    import updating

    up = updating.Updating(cfg, {"host": "127.0.0.1", "port": port, "path": "/device"})
    return up, up.rx


async def main(port):
    device, rx = build(port)
    gc.collect()
    heap_linked = gc.mem_alloc()
    ws = await wsclient.connect("127.0.0.1", port, "/device", 5, rx)
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
            await device.on_message(ws, text)
            took_us += time.ticks_diff(time.ticks_us(), started)
            text = None
            figures["frames"] += 1
            gc.collect()
            figures["live_max"] = max(figures["live_max"], gc.mem_alloc())
    except SystemExit:  # the board restarts into the new version
        figures["restarted"] = True
    figures["per_frame_us"] = took_us / max(1, figures["frames"])
    figures["heap_total"] = gc.mem_alloc() + gc.mem_free()
    print(json.dumps(figures))


asyncio.run(main(int(sys.argv[2])))
