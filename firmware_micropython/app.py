"""The supervisor: wires the parts together, restarts any task that fails, feeds the watchdog.

States, each with its LED pattern: portal (no Wi-Fi settings, wrong password, or the button
held 5 s), joining, discovering (finding or reaching the PC), linked, nodata (linked but
nothing to show). Whenever the link ends the needle parks: a stale value never stands.
"""

import asyncio
import gc
import sys

import config
import hal
import led
import protocol
from button import FACTORY_RESET, PORTAL, PORTAL_MS, Button
from needle import Needle

FW_VERSION = "0.1.0"  # released together with the PC app, same number
PROTO = 1
STATUS_EVERY_S = 10
READ_TIMEOUT_S = 30  # only silence reveals a dead Wi-Fi link
CONNECT_TIMEOUT_S = 5
HOUSEKEEPING_S = 0.5  # how often a session sends queued presses and checks the idle park
MAX_QUEUED_PRESSES = 8
CACHED_TRIES = 3  # failures on the remembered PC address before asking the network again
WATCHDOG_MS = 20000
FEED_EVERY_S = 1
LINK_STUCK_S = 120  # no sign of progress from the link for this long: it hangs
CRASH_LIMIT = 5  # failures in a row before the watchdog is let go and the board restarts
HEALTHY_RUN_S = 60  # a task that ran this long before failing starts a fresh count
RESTART_S = 1  # times the failures in a row: the wait before a failed task starts again
BUTTON_POLL_S = 0.02


def log(text):
    """One line for the serial console (the simulator's stdout)."""
    print(text)


def log_exception(where, exc):
    """The exception with its traceback, so a failure in the field can be read from USB."""
    print("error in %s: %r" % (where, exc))
    print_exception = getattr(sys, "print_exception", None)
    if print_exception is not None:
        print_exception(exc)
    else:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)


def parse_server(text, path="/device"):
    """A manual PC address "host:port" as an endpoint dict, or None if it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return {"host": host, "port": int(port), "path": path}


def unload(*names):
    """Drop modules needed only now and then (setup, discovery): their code leaves the heap."""
    for name in names:
        sys.modules.pop(name, None)
    gc.collect()


def _mem_free():
    mem_free = getattr(gc, "mem_free", None)  # MicroPython only
    if mem_free is None:
        return 0
    gc.collect()  # every 10 s: cheap, and the status then reports the heap really free
    return mem_free()


class Device:
    """The whole device: needle, LED, button, and the link to the PC."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.output = _hardware(hal.Output, cfg["dac_pin"])
        self.needle = Needle(self.output, cfg["calibration"], cfg["smoothing_ms"])
        self.led = led.Led(_hardware(hal.Led, cfg["led_pin"]))
        self.button = Button(_hardware(hal.Button, cfg["button_pin"]).pressed)
        self.presses = []  # button events waiting for a link
        self.portal_reason = None  # set when the portal must open
        self.station = None
        self.ws = None
        self.last_data = None  # ticks of the last sample or raw needle position
        self.metric = ""
        self.labels = {}  # metric id -> label, from the PC's hello
        self.shown = None  # "id label" of the metric last announced
        self.beats = {}  # task name -> ticks of its last sign of progress (None: exempt)
        self.crashes = {}  # task name -> failures in a row
        self.watchdog = None
        self.tasks = []
        self._uptime_ms = 0
        self._uptime_at = hal.ticks_ms()

    # -- the supervisor ---------------------------------------------------------------

    async def supervise(self, tasks=None):
        """Start every task and feed the watchdog while all of them are alive.

        `tasks`: (name, coroutine function) pairs; the device's own by default.
        """
        if tasks is None:
            tasks = (
                ("needle", self.needle.run),
                ("led", self.led.run),
                ("button", self._buttons),
                ("link", self._link),
            )
        self.tasks = []
        for name, run in tasks:
            self.crashes[name] = 0
            self.beat(name)
            self.tasks.append(asyncio.create_task(self._guard(name, run)))
        self.watchdog = hal.watchdog(WATCHDOG_MS)
        while True:
            if self.alive():
                self.watchdog.feed()
            await asyncio.sleep(FEED_EVERY_S)

    async def _guard(self, name, run):
        """Run a task forever: log any failure, make the device safe, start it again."""
        while True:
            started = hal.ticks_ms()
            try:
                await run()
                log("task %s ended; starting it again" % name)
            except Exception as exc:  # any failure, even a bug, must not stop the device
                log_exception("task " + name, exc)
            if hal.ticks_diff(hal.ticks_ms(), started) >= HEALTHY_RUN_S * 1000:
                self.crashes[name] = 0
            self.crashes[name] += 1
            self._make_safe(name)
            gc.collect()
            await asyncio.sleep(min(self.crashes[name], 10) * RESTART_S)

    def _make_safe(self, name):
        if name == "link":
            self.ws = None  # the link task closes its socket in a finally; forget it
            self.needle.park()
            self.led.show(led.NODATA)
        elif name == "needle":
            self.needle.park()

    def beat(self, name):
        """Note that task `name` made progress."""
        self.beats[name] = hal.ticks_ms()

    def alive(self):
        """True when no task fails again and again and the link is not stuck."""
        if any(count >= CRASH_LIMIT for count in self.crashes.values()):
            return False
        at = self.beats.get("link")
        return at is None or hal.ticks_diff(hal.ticks_ms(), at) <= LINK_STUCK_S * 1000

    # -- the button -----------------------------------------------------------------

    async def _buttons(self):
        while True:
            now = hal.ticks_ms()
            event = self.button.poll(now)
            if event == FACTORY_RESET:
                await self._factory_reset()
            elif event == PORTAL:
                log("button held: opening the setup portal")
                self.portal_reason = "The button was held: change the settings here."
            elif event is not None:
                self.queue_press(event)
            elif self.button.held_ms(now) >= PORTAL_MS:
                self.led.show(led.PORTAL)  # let go now and the portal opens
            await asyncio.sleep(BUTTON_POLL_S)

    def queue_press(self, event):
        """Keep a button event for the PC; while offline only the last 8 are kept."""
        self.presses.append(event)
        if len(self.presses) > MAX_QUEUED_PRESSES:
            self.presses.pop(0)

    async def _factory_reset(self):
        log("button held 12 s: factory reset")
        config.erase()
        self.needle.sweep()  # the confirmation the user sees
        while self.needle.moving:
            await asyncio.sleep(0.1)
        hal.reset()

    # -- the link ---------------------------------------------------------------------

    async def _link(self):
        import backoff

        delays = backoff.Backoff()
        cached_failures = 0
        while True:
            self.beat("link")
            if self.portal_reason or not self.cfg["ssid"]:
                await self._portal(self.portal_reason or "Choose the Wi-Fi network for the meter.")
                continue
            ip = await self._join()
            if ip is None:
                continue
            endpoint, source = await self._endpoint(ip, cached_failures)
            if endpoint is None:
                continue
            linked_s = await self._connect_and_serve(endpoint, source)
            if linked_s is None and source == "cached":
                cached_failures += 1
                if cached_failures >= CACHED_TRIES:
                    log("link: the remembered PC address failed %d times" % CACHED_TRIES)
                    cached_failures = 0
                    self._update(cached=None)
            elif linked_s is not None:
                cached_failures = 0
                delays.reset_if_healthy(linked_s)
            if self.portal_reason:
                continue
            self.led.show(led.DISCOVERING)
            delay = delays.next()
            log("link: next try in %.1f s" % delay)
            await self._pause(delay)

    async def _pause(self, seconds):
        """Sleep, but wake early when the portal is asked for."""
        while seconds > 0 and not self.portal_reason:
            await asyncio.sleep(min(seconds, HOUSEKEEPING_S))
            seconds -= HOUSEKEEPING_S

    async def _portal(self, reason):
        import portal

        self.portal_reason = None
        self.needle.park()
        self.led.show(led.PORTAL)
        log("portal: " + reason)
        self.beats["link"] = None  # the portal keeps its own idle limit
        try:
            cfg = await portal.run_portal(self.cfg, reason)
        finally:
            self.beat("link")
            del portal
            unload("portal", "pages", "httpparse", "dns")
        self.cfg = cfg

    def _station(self):
        if self.station is None:
            import wifi

            self.station = wifi.Station()
        return self.station

    async def _join(self):
        """Join the saved network: its IP, or None when the portal must open instead."""
        station = self._station()
        if station.connected():
            return station.ip()
        self.led.show(led.JOINING)
        ssid = self.cfg["ssid"]
        log("wifi: joining " + repr(ssid))

        def report(result, ip):
            self.beat("link")
            log("wifi: " + station.last)

        ip = await station.stay_joined(ssid, self.cfg["password"], report=report)
        if ip is None:
            self._update(wrong_password_count=self.cfg["wrong_password_count"] + 1)
            self.portal_reason = station.last
        elif self.cfg["wrong_password_count"]:
            self._update(wrong_password_count=0)
        return ip

    async def _endpoint(self, ip, cached_failures):
        """Where the PC is, and how we know: "manual", "cached" or "found"."""
        manual = self.cfg["server"]
        if manual:
            endpoint = parse_server(manual)
            if endpoint is not None:
                return endpoint, "manual"
            log("link: the PC address %r is not host:port; searching instead" % manual)
        cached = self.cfg["cached"]
        if cached and cached_failures < CACHED_TRIES:
            return cached, "cached"
        try:
            return await self._discover(ip)
        finally:
            unload("discovery", "dns")

    async def _discover(self, ip):
        import discovery

        self.led.show(led.DISCOVERING)
        retry = discovery.Retry()
        while not self.portal_reason and self._station().connected():
            self.beat("link")
            try:
                found = await discovery.find_server(own_ip=ip)
            except OSError as exc:
                log("discovery: %r" % exc)
                found = None
            if found is not None:
                log("discovery: found %s at %s:%d" % (found["name"], found["host"], found["port"]))
                return {
                    "host": found["host"],
                    "port": found["port"],
                    "path": found["path"],
                }, "found"
            await self._pause(retry.next())
        return None, None

    async def _connect_and_serve(self, endpoint, source):
        """Link to `endpoint` and serve it; the seconds it lasted, or None if it never linked."""
        import wsclient

        host, port, path = endpoint["host"], endpoint["port"], endpoint["path"]
        try:
            ws = await wsclient.connect(host, port, path, timeout=CONNECT_TIMEOUT_S)
        except (OSError, ValueError) as exc:  # WSError is a ValueError
            log("link: cannot reach %s:%d (%r)" % (host, port, exc))
            return None
        log("link: connected to %s:%d" % (host, port))
        if source != "manual" and self.cfg["cached"] != endpoint:
            self._update(cached=endpoint)
        self.ws = ws
        linked_at = hal.ticks_ms()
        try:
            await self._session(ws)
        except (OSError, ValueError) as exc:  # the link broke; WSClosed is a ValueError
            log("link: ended (%r)" % exc)
        finally:
            self.ws = None
            await ws.close()
            self.needle.park()
            self.led.show(led.DISCOVERING)
            gc.collect()
        return hal.ticks_diff(hal.ticks_ms(), linked_at) / 1000

    async def _session(self, ws):
        """Talk to the PC until the link ends (returns or raises)."""
        await self._send(ws, self._hello())
        self.last_data = None
        self.led.show(led.NODATA)
        heard = hal.ticks_ms()
        status_at = None
        while True:
            now = hal.ticks_ms()
            self.beat("link")
            if status_at is None or hal.ticks_diff(now, status_at) >= STATUS_EVERY_S * 1000:
                await self._send(ws, self._status())
                status_at = now
            while self.presses:
                await self._send(ws, {"type": "button", "event": self.presses[0]})
                self.presses.pop(0)
            self._idle_park(now)
            if self.portal_reason:
                await ws.close(1001)
                return
            try:
                text = await asyncio.wait_for(ws.recv(), HOUSEKEEPING_S)
            except asyncio.TimeoutError:
                if hal.ticks_diff(hal.ticks_ms(), heard) >= READ_TIMEOUT_S * 1000:
                    log("link: no word from the PC for %d s" % READ_TIMEOUT_S)
                    return
                continue
            heard = hal.ticks_ms()
            await self.on_message(ws, text)

    async def on_message(self, ws, text):
        """Act on one frame from the PC; a bad one is answered with `error`."""
        try:
            msg = protocol.decode(text, "server")
        except protocol.ProtocolError as exc:
            log("link: bad message: %s" % exc)
            await self._send(ws, {"type": "error", "reason": str(exc)[:200] or "bad message"})
            return
        kind = msg["type"]
        if kind not in protocol.RESERVED:
            self._announce(kind, msg.get("label"))
            self.needle.show(msg["value"])
            self._data()
        elif kind == "needle":
            self.needle.set_raw(msg["value"])
            self._data()
        elif kind == "park":
            log("link: park (%s)" % msg.get("reason", "asked"))
            self.needle.park()
            self.led.show(led.NODATA)
        elif kind == "calibration":
            self.needle.set_calibration(msg["points"])
            self._update(calibration=msg["points"])
            await self._send(ws, {"type": "ack", "of": "calibration"})
        elif kind == "settings":
            self._settings(msg)
            await self._send(ws, {"type": "ack", "of": "settings"})
        elif kind == "sweep":
            self.needle.sweep()
        elif kind == "identify":
            self.needle.identify()
        elif kind == "hello":
            self.metric = msg["metric"]
            self.labels = {m["id"]: m["label"] for m in msg["metrics"]}
            log("link: the PC %r shows %s here" % (msg["server"], self.metric))
            self._announce(self.metric, None)
        elif kind == "error":
            log("link: the PC says: " + msg["reason"])

    def _announce(self, metric, label):
        """Print `metric <id> <label>` when the shown metric changes (the simulator reads it)."""
        shown = metric + " " + (label or self.labels.get(metric) or metric)
        if shown != self.shown:
            self.shown = shown
            log("metric " + shown)

    def _data(self):
        self.last_data = hal.ticks_ms()
        self.led.show(led.LINKED)

    def _idle_park(self, now):
        if self.needle.parked or self.last_data is None:
            return
        if hal.ticks_diff(now, self.last_data) >= self.cfg["idle_park_s"] * 1000:
            log("link: no data for %s s: parking" % self.cfg["idle_park_s"])
            self.needle.park()
            self.led.show(led.NODATA)

    def _settings(self, msg):
        changes = {}
        if "smoothing_ms" in msg:
            self.needle.smoothing_ms = msg["smoothing_ms"]
            changes["smoothing_ms"] = msg["smoothing_ms"]
        if "idle_park_s" in msg:
            changes["idle_park_s"] = msg["idle_park_s"]
        self._update(**changes)

    def _hello(self):
        return {
            "type": "hello",
            "proto": PROTO,
            "id": hal.unique_id(),
            "fw": FW_VERSION,
            "board": hal.board(),
            "output": hal.output_kind(),
            "calibration": self.needle.calibration.as_list(),
        }

    def _status(self):
        now = hal.ticks_ms()
        self._uptime_ms += hal.ticks_diff(now, self._uptime_at)  # ticks wrap; the sum does not
        self._uptime_at = now
        rssi = self.station.rssi() if self.station is not None else None
        return {
            "type": "status",
            "rssi": rssi,
            "heap": _mem_free(),
            "uptime": self._uptime_ms / 1000,
        }

    async def _send(self, ws, msg):
        await ws.send(protocol.encode(msg))

    def _update(self, **changes):
        """Change settings and save them; a failed save is logged, the device carries on."""
        cfg = dict(self.cfg)
        cfg.update(changes)
        self.cfg = cfg
        try:
            config.save(cfg)
        except (OSError, ValueError) as exc:
            log("config: not saved (%r)" % exc)


def _hardware(part, pin):
    """`part` on the configured pin, or on the board's default one if that pin is unusable."""
    try:
        return part(pin)
    except (OSError, ValueError) as exc:  # a pin this board does not have
        log("%s: pin %r unusable (%r); using the board's default" % (part.__name__, pin, exc))
        return part()


def run():
    """Start the device and run it until the board stops."""
    import wsclient

    wsclient.reserve()  # the one 4 KiB block the link needs, before the heap fragments
    device = Device(config.load())
    try:
        asyncio.run(device.supervise())
    finally:
        device.output.write(0.0)  # whatever stops the firmware, the needle does not stay up
