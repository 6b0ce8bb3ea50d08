"""Update mode: the board restarted to take a firmware update, and holds only what that needs.

In linked mode a manifest from the proven PC does not start the transfer: the link notes
where the PC is (notes.ask_update), closes with 1012 and restarts the board into this
mode, as Tasmota's minimal image does. Here the board joins the saved network, links to
that PC with the same handshake (only the paired PC gets this far), and hands its `update`
and `chunk` frames to the receiver (ota.py). Samples and needle commands wait for linked
mode; the needles rest at 0.

The heap holds the WebSocket client, the protocol and the receiver: not the supervisor,
the link, the needles' motion, the LED or the button (docs/performance.md).

The board restarts into linked mode when the PC refuses or stops the update, when the
link fails for good, and when no step of the update came for _GIVE_UP_S; after the last
file it restarts into the new version. A transfer cut short resumes when the PC sends the
manifest again: the receiver finds what is already on the flash.
"""

import asyncio
import gc
import sys

import hal
import protocol
from micropython import const

_GIVE_UP_S = const(120)  # no step of the update for this long: back to linked mode
_WATCHDOG_MS = const(20000)
_CONNECT_TIMEOUT_S = const(5)
_READ_TIMEOUT_S = const(30)  # link.py's: only silence reveals a dead Wi-Fi link
_WAIT_S = const(1)  # a read's wait: the watchdog and the Wi-Fi are looked at between reads
_RETRY_S = const(2)  # between tries to reach the PC
_RX_BYTES = const(4096 + 14)  # link.py's: a whole frame


def log(text):
    """One line for the serial console (the simulator's stdout)."""
    print(text)


def unload(*names):
    """Drop modules needed only now and then (link.py's, which this mode does not load)."""
    for name in names:
        sys.modules.pop(name, None)
    gc.collect()


class Updating:
    """The update's link to its PC. It stands where the link stands for the handshake
    (handshake.py): `cfg`, `pairing`, `needle_parts`, `_send`, `_welcome`, `_failed`."""

    def __init__(self, cfg, where):
        self.cfg = cfg
        self.where = where  # the PC's endpoint: host, port, path
        self.outputs = hal.outputs(cfg["needles"])
        for output, _ in self.outputs:
            output.write(0.0)
        self.progress = hal.ticks_ms()  # the last step of the update
        self.receiver = None
        self.wlan = None
        self._failed = False
        # taken first, while the heap is in one piece, as the link takes its own
        self.rx = bytearray(_RX_BYTES)

    def pairing(self):
        return False  # a meter is paired already when its PC sends an update

    def needle_parts(self):
        """(output, calibration points) of each needle: the hello says what linked mode says."""
        return [(output, one["calibration"]) for output, one in self.outputs]

    def _welcome(self, msg):
        pass  # the metrics' names wait for linked mode

    async def _send(self, ws, msg):
        await ws.send(protocol.encode(msg))

    async def work(self):
        """Join, link to the PC and take the update, linking again when a link ends."""
        while True:
            if not await self._joined():
                return
            await self._link()
            await asyncio.sleep(_RETRY_S)

    async def _joined(self):
        """True once on the saved network; False when it refused the password."""
        if self.wlan is None:
            self.wlan = hal.wlan_station()
        if self.wlan.isconnected():
            return True
        import wifi

        try:
            station = wifi.Station(self.wlan, power_save=self.cfg["wifi_power_save"])
            log("wifi: joining " + repr(self.cfg["ssid"]))

            def report(result, ip):
                log("wifi: " + station.last)

            import rejoin

            ssid = self.cfg["ssid"]
            ip = await rejoin.stay_joined(station, ssid, self.cfg["password"], report=report)
        finally:
            del wifi
            unload("wifi", "rejoin")
        return ip is not None

    async def _link(self):
        import wsclient

        where = self.where
        host, port = where["host"], where["port"]
        try:
            ws = await wsclient.connect(host, port, where["path"], _CONNECT_TIMEOUT_S, self.rx)
        except (OSError, ValueError) as exc:  # WSError is a ValueError
            log("update: cannot reach %s:%d (%r)" % (host, port, exc))
            return
        log("update: connected to %s:%d" % (host, port))
        try:
            import handshake

            try:
                proven = await handshake.prove(self, ws)
            finally:
                del handshake
                unload("handshake")
            if proven:
                log("update: the PC proved our key")
                await self._serve(ws)
        except (OSError, ValueError, MemoryError) as exc:  # WSClosed is a ValueError
            log("update: link ended (%r)" % exc)
        finally:
            await ws.close()
            gc.collect()

    async def _serve(self, ws):
        heard = hal.ticks_ms()
        while True:
            if not self.wlan.isconnected():
                log("update: Wi-Fi lost")
                return
            try:
                text = await ws.recv(_WAIT_S)
            except asyncio.TimeoutError:
                if hal.ticks_diff(hal.ticks_ms(), heard) >= _READ_TIMEOUT_S * 1000:
                    log("update: no word from the PC for %d s" % _READ_TIMEOUT_S)
                    return
                continue
            heard = hal.ticks_ms()
            try:
                await self.on_message(ws, text)
            except MemoryError:
                # the frame was read whole, so the stream is still in step; the receiver
                # is dropped, and the PC's next manifest finds on the flash where it stood
                text = None
                self.receiver = None
                gc.collect()
                await self._send(ws, {"type": "error", "reason": "message too big for the meter"})

    async def on_message(self, ws, text):
        """Act on one frame from the PC: an update's step is answered with `update_status`,
        a bad frame with `error`; anything else waits for linked mode."""
        try:
            msg = protocol.decode(text, "server")
        except protocol.ProtocolError as exc:
            log("update: bad message: %s" % exc)
            await self._send(ws, {"type": "error", "reason": str(exc)[:200] or "bad message"})
            return
        text = None
        kind = msg["type"]
        if kind == "error":
            log("update: the PC says: " + msg["reason"])
        if kind != "update" and kind != "chunk":
            return
        if self.receiver is None:
            import ota

            self.receiver = ota.Receiver()
        if kind == "update":
            status = self.receiver.begin(msg["version"], msg["files"])
        else:
            status = self.receiver.chunk(msg["file"], msg["offset"], msg["data"])
        msg = None
        self.progress = hal.ticks_ms()
        state = status["state"]
        if state != "receiving":
            log("update: %s" % (status.get("reason") or state))
        status["type"] = "update_status"
        await self._send(ws, status)
        if state != "receiving":  # restarting into the new version, or refused
            await ws.close(1001)
            hal.reset()


async def _watch(updating):
    """Feed the watchdog while the update goes on; restart into linked mode when it ends,
    or when no step of it came for _GIVE_UP_S."""
    task = asyncio.create_task(updating.work())
    watchdog = hal.watchdog(_WATCHDOG_MS)
    while not task.done():
        if hal.ticks_diff(hal.ticks_ms(), updating.progress) >= _GIVE_UP_S * 1000:
            log("update: no step of the update for %d s: back to linked mode" % _GIVE_UP_S)
            break
        watchdog.feed()
        await asyncio.sleep(1)
    else:
        log("update: no way to the PC: back to linked mode")
    task.cancel()
    hal.reset()


def run(cfg, where):
    """Take the update from the PC at `where` (notes.update_asked); ends in a restart."""
    log("update: taking a firmware update from %s:%d" % (where["host"], where["port"]))
    updating = Updating(cfg, where)
    try:
        asyncio.run(_watch(updating))
    finally:
        for output, _ in updating.outputs:  # whatever stops it, no needle stays up
            output.write(0.0)
