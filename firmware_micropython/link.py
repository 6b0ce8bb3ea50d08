"""The link task (linked mode): joining Wi-Fi, finding the PC, and the session with it.

The supervisor (supervisor.py) owns the needle, the LED, the button and the watchdog; this task
reads them through `device` and reports its progress with `device.beat("link")`.
"""

import asyncio
import gc
import sys

import hal
import protocol
import slots
from micropython import const

_PAIR_WINDOW_MS = const(60000)  # a button press lets the meter take a PC's key for a minute
_SAVE_EVERY_MS = const(1000)  # the flash is written at most once a second
_STATUS_EVERY_S = const(10)
_READ_TIMEOUT_S = const(30)  # only silence reveals a dead Wi-Fi link
_CONNECT_TIMEOUT_S = const(5)
# commands that name a needle, or act on every needle when they name none
_NEEDLE_COMMANDS = const(("needle", "park", "calibration", "settings", "sweep", "identify"))
_HOUSEKEEPING_S = const(0.5)  # how often a session sends queued presses and checks the idle park
_CACHED_TRIES = const(3)  # failures on the remembered PC address before asking the network again
# the receive buffer: a whole frame (wsframe's MAX_PAYLOAD + MAX_HEADER)
_RX_BYTES = const(4096 + 14)


def log(text):
    """One line for the serial console (the simulator's stdout)."""
    print(text)


def unload(*names):
    """Drop modules needed only now and then (setup, discovery): their code leaves the heap."""
    for name in names:
        sys.modules.pop(name, None)
    gc.collect()


class Link:
    """Brings the device to its PC and serves the link, again and again, for the supervisor."""

    def __init__(self, device, cfg):
        self.device = device
        self.cfg = cfg
        # the radio's station interface (a C object on the board), from the first join; the
        # join code (wifi.py) is loaded only while joining, and leaves the heap once joined
        self.wlan = None
        self.ws = None
        self.last_data = None  # ticks of the last sample or raw needle position
        self.metric = ""
        self.labels = {}  # metric id -> label, from the PC's hello
        self.shown = {}  # needle number -> "id label" of the metric last announced there
        # where the PC was last reached: kept in memory only, so no answer on the network
        # (a spoofed one included) ever causes a flash write
        self.cached = cfg["cached"]
        self.pair_pressed_at = None  # ticks of the button press that asked to pair
        self._pair_wake = False
        self.refused = []  # "host:port" of the last answers that failed the handshake
        self._failed = False  # this connection's PC failed the handshake (not a pairing talk)
        self._dirty = False  # settings changed but not yet written
        self._saved_at = None
        self._uptime_ms = 0
        self._uptime_at = hal.ticks_ms()
        self._note = None  # what the PC must hear of an update once the link is proven
        self.proven = False
        self.endpoint = None  # where this session's PC is (an update mode links to it)
        # taken at boot, while the heap is in one piece: after discovery has come and gone
        # there may be no 4 KiB left in one block; the WebSocket code leaves the heap while
        # discovery runs, the buffer stays
        self.rx = bytearray(_RX_BYTES)

    async def run(self):
        import backoff

        delays = backoff.Backoff()
        cached_failures = 0
        while True:
            self.device.beat("link")
            reason = self.device.portal_reason
            if reason or not self.cfg["ssid"]:
                self.device.open_setup(reason or "Choose the Wi-Fi network for the meter.")
                continue
            # joining and finding the PC (reach.py) leave the heap before a session starts
            import reach

            try:
                ip = await reach.join(self)
                found = None if ip is None else await reach.endpoint(self, ip)
            finally:
                del reach
                unload("reach")
            if found is None or found[0] is None:
                continue
            endpoint, source = found
            linked_s = await self._connect_and_serve(endpoint, source)
            if linked_s is None and source == "cached":
                cached_failures += 1
                if cached_failures >= _CACHED_TRIES:
                    log("link: the remembered PC address failed %d times" % _CACHED_TRIES)
                    cached_failures = 0
                    self.cached = None
            elif linked_s is not None:
                cached_failures = 0
                delays.reset_if_healthy(linked_s)
            if self.device.portal_reason or not self.wlan.isconnected():
                continue  # the portal, or a new join (which keeps its own backoff)
            self.device.led.show("discovering")
            delay = delays.next()
            log("link: next try in %.1f s" % delay)
            await self._pause(delay)

    async def _pause(self, seconds):
        """Sleep, but wake early when the portal is asked for or the button asks to pair (a
        press that came while discovery or a connection ran skips the pause after it)."""
        while seconds > 0 and not self.device.portal_reason and not self._pair_wake:
            await asyncio.sleep(min(seconds, _HOUSEKEEPING_S))
            seconds -= _HOUSEKEEPING_S
            self._flush()
        self._pair_wake = False

    # -- pairing (docs/protocol.md, "Trust") -------------------------------------------

    def pairing(self):
        """True within a minute of a button press that asked to pair."""
        at = self.pair_pressed_at
        if at is not None and hal.ticks_diff(hal.ticks_ms(), at) >= _PAIR_WINDOW_MS:
            self.pair_pressed_at = at = None
        return at is not None

    def wants_pairing(self, event):
        """Take a button event as a request to pair, if it is one: any press of an unpaired
        meter, or a long press of one not linked to its own PC."""
        if self.proven or (event != "long" and self.cfg["key"]):
            return False
        log("button: pairing; the PC takes a press for a minute")
        self.pair_pressed_at = hal.ticks_ms()
        self._pair_wake = True
        return True

    async def _connect_and_serve(self, endpoint, source):
        """Link to `endpoint` and serve it; the seconds it lasted, or None if it never linked."""
        import wsclient

        host, port, path = endpoint["host"], endpoint["port"], endpoint["path"]
        try:
            ws = await wsclient.connect(host, port, path, _CONNECT_TIMEOUT_S, self.rx)
        except (OSError, ValueError) as exc:  # WSError is a ValueError
            log("link: cannot reach %s:%d (%r)" % (host, port, exc))
            return None
        log("link: connected to %s:%d" % (host, port))
        self.ws = ws
        self.endpoint = endpoint
        self._failed = True  # until the PC proves the key, or the talk is about pairing
        linked_at = hal.ticks_ms()
        try:
            await self._session(ws)
        except (OSError, ValueError, MemoryError) as exc:  # WSClosed is a ValueError
            log("link: ended (%r)" % exc)
        finally:
            proven, self.proven = self.proven, False
            self.ws = None
            await ws.close()
            self.device.needles.park()
            self.device.led.show("discovering")
            self._flush(True)
            gc.collect()
        if not proven:
            # a failed handshake counts as no link: the backoff goes on, and discovery passes
            # this answer over next time (a spoofed one costs one handshake, never a change).
            # A pairing talk is no failure: that PC is the one to pair with, or now paired.
            where = "%s:%d" % (host, port)
            if self._failed and source == "found" and where not in self.refused:
                self.refused.append(where)
                del self.refused[:-4]
            return None
        if source != "manual":
            self.cached = endpoint
        return hal.ticks_diff(hal.ticks_ms(), linked_at) / 1000

    async def _session(self, ws):
        """Prove the key with the PC, then talk to it until the link ends (returns or raises)."""
        import handshake

        try:
            proven = await handshake.prove(self, ws)
        finally:
            del handshake
            unload("handshake")  # needed again only at the next connection
        if not proven:
            return
        self.proven = True
        self.pair_pressed_at = None
        log("link: the PC proved our key")
        self.last_data = None
        self.device.led.show("nodata")
        heard = hal.ticks_ms()
        status_at = None
        while True:
            now = hal.ticks_ms()
            self.device.beat("link")
            if status_at is None or hal.ticks_diff(now, status_at) >= _STATUS_EVERY_S * 1000:
                await self._send(ws, self._status())
                status_at = now
            while self.device.presses:
                await self._send(ws, {"type": "button", "event": self.device.presses[0]})
                self.device.presses.pop(0)
            self._idle_park(now)
            self._flush()
            if self.device.portal_reason:
                await ws.close(1001)
                return
            if self.wlan is not None and not self.wlan.isconnected():
                # the radio knows within seconds; a silent TCP link would take _READ_TIMEOUT_S
                log("link: Wi-Fi lost")
                return
            try:
                text = await ws.recv(_HOUSEKEEPING_S)
                heard = hal.ticks_ms()
                await self.on_message(ws, text)
            except asyncio.TimeoutError:
                if hal.ticks_diff(hal.ticks_ms(), heard) >= _READ_TIMEOUT_S * 1000:
                    log("link: no word from the PC for %d s" % _READ_TIMEOUT_S)
                    return
            except MemoryError:
                # a frame needing more heap than the meter has costs one error reply, not the
                # link: the frame was read whole, so the stream is still in step
                text = None
                gc.collect()
                heard = hal.ticks_ms()
                log("link: a message too big for the heap; dropped")
                await self._send(ws, {"type": "error", "reason": "message too big for the meter"})

    def needle_parts(self):
        """(output, calibration points) of each needle, for our hello."""
        return [(needle.output, needle.calibration.as_list()) for needle in self.device.needles.all]

    def _welcome(self, msg):
        self.labels = {m["id"]: m["label"] for m in msg["metrics"]}
        for number, metric in enumerate(msg["needles"], 1):
            self._announce(number, metric, None)

    async def on_message(self, ws, text):
        """Act on one frame from the PC; a bad one is answered with `error`."""
        try:
            msg = protocol.decode(text, "server")
        except protocol.ProtocolError as exc:
            log("link: bad message: %s" % exc)
            await self._send(ws, {"type": "error", "reason": str(exc)[:200] or "bad message"})
            return
        kind = msg["type"]
        if kind not in protocol.RESERVED or kind in _NEEDLE_COMMANDS:
            await self._to_needles(ws, kind, msg)
        elif kind == "welcome":
            self._welcome(msg)
        elif kind == "update" or kind == "chunk":
            await self._firmware(ws, kind, msg)
        elif kind == "error":
            log("link: the PC says: " + msg["reason"])

    async def _to_needles(self, ws, kind, msg):
        """A sample (for needle 1 unless it names one) or a needle command (for every needle
        unless it names one), acted on by the needles it is for."""
        number = msg.get("needle")
        sample = kind not in _NEEDLE_COMMANDS
        needles = self.device.needles.pick(1 if sample and number is None else number)
        if not needles:
            reason = "this meter has no needle %d" % number
            await self._send(ws, {"type": "error", "reason": reason})
            return
        if sample:
            self._announce(number or 1, kind, msg.get("label"))
            needles[0].show(msg["value"])
            self._data()
        elif kind == "needle":
            for needle in needles:
                needle.set_raw(msg["value"])
            self._data()
        elif kind == "park":
            log("link: park (%s)" % msg.get("reason", "asked"))
            for needle in needles:
                needle.park()
            if self.device.needles.parked:
                self.device.led.show("nodata")
            if "metric" in msg:  # its metric has nothing to show: the name stays current
                for needle in needles:
                    number = self.device.needles.all.index(needle) + 1
                    self._announce(number, msg["metric"], msg.get("label"))
        elif kind == "sweep":
            for needle in needles:
                needle.sweep()
        elif kind == "identify":
            for needle in needles:
                needle.identify()
        else:  # calibration or settings: kept, and acknowledged
            self._keep(needles, msg)
            ack = {"type": "ack", "of": kind}
            if number is not None:
                ack["needle"] = number
            await self._send(ws, ack)

    def _keep(self, needles, msg):
        """Apply a calibration or settings message to `needles` and save it."""
        import config

        cfg = self.cfg
        for needle in needles:
            number = self.device.needles.all.index(needle) + 1
            if "points" in msg:
                needle.set_calibration(msg["points"])
                cfg = config.with_needle(cfg, number, calibration=msg["points"])
            if "smoothing_ms" in msg:
                needle.smoothing_ms = msg["smoothing_ms"]
                cfg = config.with_needle(cfg, number, smoothing_ms=msg["smoothing_ms"])
        if "idle_park_s" in msg:
            cfg = dict(cfg)
            cfg["idle_park_s"] = msg["idle_park_s"]
        self._update(**cfg)

    def _announce(self, number, metric, label):
        """Print `metric <id> <label>` (needle 2: `metric2 ...`) when a needle's metric
        changes: the simulator reads it."""
        shown = metric + " " + (label or self.labels.get(metric) or metric)
        if shown != self.shown.get(number):
            self.shown[number] = shown
            log(("metric " if number == 1 else "metric%d " % number) + shown)

    def _data(self):
        self.last_data = hal.ticks_ms()
        self.device.led.show("linked")

    def _idle_park(self, now):
        if self.device.needles.parked or self.last_data is None:
            return
        if hal.ticks_diff(now, self.last_data) >= self.cfg["idle_park_s"] * 1000:
            log("link: no data for %s s: parking" % self.cfg["idle_park_s"])
            self.device.needles.park()
            self.device.led.show("nodata")

    async def _firmware(self, ws, kind, msg):
        """A firmware update's `update` or `chunk` frame: see updatemsg.offered."""
        import updatemsg  # loaded already: decoding the frame needed it

        try:
            await updatemsg.offered(self, ws, kind, msg)
        finally:
            del updatemsg
            unload("updatemsg")  # a refused offer leaves no code behind

    @property
    def proven(self):
        """True while linked to our own PC, both proofs passed (the handshake sets it)."""
        return self._proven

    @proven.setter
    def proven(self, value):
        self._proven = value
        note = slots.note() if value else None
        if note is not None:
            # a new version's first proven link confirms it; the PC hears that, or of a
            # rollback, before anything else this link sends (see _send)
            self._note = dict(note)
            self._note["type"] = "update_status"
            if note["state"] == "confirmed":
                slots.noted()  # at once: a lost link must not cost a good version its trial

    def _status(self):
        now = hal.ticks_ms()
        self._uptime_ms += hal.ticks_diff(now, self._uptime_at)  # ticks wrap; the sum does not
        self._uptime_at = now
        try:
            joined = self.wlan is not None and self.wlan.isconnected()
            rssi = int(self.wlan.status("rssi")) if joined else None
        except (OSError, TypeError, ValueError):
            rssi = None
        return {
            "type": "status",
            "rssi": rssi,
            "heap": hal.mem_free(),  # every 10 s: one collection is cheap
            "uptime": self._uptime_ms / 1000,
        }

    async def _send(self, ws, msg):
        note = getattr(self, "_note", None)
        if note is not None and self.proven:
            self._note = None
            await ws.send(protocol.encode(note))
            if note["state"] == "rolled_back":
                slots.noted()  # only once sent: a link lost first tells it at the next one
        await ws.send(protocol.encode(msg))

    def _update(self, **changes):
        """Change settings; they are saved when they really changed, at most once a second."""
        cfg = dict(self.cfg)
        cfg.update(changes)
        if cfg == self.cfg:
            return  # the same values again: the flash is not touched
        self.cfg = cfg
        self._dirty = True
        self._flush()

    def _flush(self, now=False):
        """Save changed settings, unless the last save is less than a second old (`now`
        saves anyway); a failed save is logged, the device carries on."""
        if not self._dirty:
            return
        at = self._saved_at
        if not now and at is not None and hal.ticks_diff(hal.ticks_ms(), at) < _SAVE_EVERY_MS:
            return
        self._dirty = False
        self._saved_at = hal.ticks_ms()
        import config  # loaded for the save only: saves are rare, the heap is not

        try:
            config.save(self.cfg)
        except (OSError, ValueError) as exc:
            log("config: not saved (%r)" % exc)
        finally:
            del config
            unload("config")
