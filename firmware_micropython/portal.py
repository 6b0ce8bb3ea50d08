"""Captive setup portal: WPA2 access point, a DNS server that answers with our address,
and a small HTTP server with the setup form. Runs until a join worked, or it sat idle, or it
was open for _MAX_OPEN_S however busy.

The ESP32 has one radio: the access point sits on the home network's channel, so that joining
it does not move the access point and throw the phone off; while the portal is up the saved
network is tried again every _RETRY_SAVED_S, and a join that works closes the portal. A scan
takes the radio off the channel for 2-3 s, so it runs when the portal opens and when the
user asks, not by itself."""

import asyncio
import socket
import sys

import pages
import portaldns
import wifi
from httpparse import HTTPError, head_end, parse_head, response
from micropython import const

_DEFAULT_AP_IP = const("192.168.4.1")
_IDLE_S = const(600)  # nobody used the page for this long: restart and try the saved network
_MAX_OPEN_S = const(1800)  # open this long, used or not: restart (requests cannot keep it open)
# the saved network is tried again this often while the portal is up, when nobody has used
# the page for as long (a join may move the radio under them)
_RETRY_SAVED_S = const(60)
_JOIN_DELAY_S = const(10)  # the join waits until the user has seen what happens next, or this long
_READ_TIMEOUT_S = const(5)  # one read from a client
_REQUEST_S = const(10)  # a whole request, so a client dribbling bytes cannot hold a slot
_JOINED_GRACE_S = const(20)  # keep serving after a join so the browser can show the result
_RESCAN_GAP_S = const(5)
_MAX_CLIENTS = const(6)  # sockets are scarce on the ESP32; browsers open several at once
_PER_CLIENT = const(3)  # one address cannot take every slot
_READ_SIZE = const(128)  # bytes read from a client at a time (_read_request)
_TURN_S = const(0.02)  # how often a request read in full looks whether its turn has come
# Requests are read side by side (a browser's idle preconnection must not hold the others
# up) but answered one at a time: the heap holds one page being built and sent, not six.

_NOT_FOUND = const(("/favicon.ico", "/wpad.dat"))


def _env_int(name, default):
    """An integer from the environment (the unix port has one; the board does not)."""
    import os

    getenv = getattr(os, "getenv", None)
    value = getenv(name) if getenv else None
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _ticks():
    import hal

    return hal.ticks_ms()


def _age_s(since_ms):
    import hal

    return hal.ticks_diff(hal.ticks_ms(), since_ms) / 1000


class ScanCache:
    """Networks in range, scanned once, then again only when the user asks (at most every
    _RESCAN_GAP_S): each scan throws the setup network's clients off for a moment.

    `clock` has hal's ticks_ms() and ticks_diff(); tests hand in their own.
    """

    def __init__(self, station, clock=None):
        if clock is None:
            import hal as clock
        self.station = station
        self.clock = clock
        self.networks = []
        self.at = None

    def _age_s(self):
        return self.clock.ticks_diff(self.clock.ticks_ms(), self.at) / 1000

    def get(self):
        """The cached networks (scanned first if never scanned)."""
        if self.at is None:
            self.rescan()
        return self.networks

    def rescan(self):
        """Scan now, unless the last scan is only seconds old; a failed scan keeps the old list."""
        if self.at is not None and self._age_s() < _RESCAN_GAP_S:
            return
        found = self.station.scan()
        self.at = self.clock.ticks_ms()
        if found is not None:
            self.networks = found


class Portal:
    """The DNS and HTTP servers and the join they lead to."""

    def __init__(self, cfg, reason, station, ip, host, dns_port, http_port, bind_ip):
        self.cfg = cfg
        self.reason = reason
        self.station = station
        self.ip = ip  # what DNS answers: the access point's address
        self.home = "http://" + host + "/"  # where redirects send browsers
        self.hosts = (host, ip, ip + ":" + str(http_port))
        self.dns_port = dns_port
        self.http_port = http_port
        self.bind_ip = bind_ip
        self.scans = ScanCache(station)
        self.ap = None  # the access point, to move it onto a chosen network's channel
        self.clients = 0
        self.per_client = {}  # client address -> connections open
        self.opened_at = _ticks()
        self.used_at = self.opened_at
        self.retried_at = self.opened_at
        self.retry_s = None  # seconds between tries of the saved network; None: never
        self.joining = None  # the join task while it runs
        self.retrying = False  # ... and it is a retry of the saved network, not the user's
        self.pending = None  # (ssid, password) the user sent, while "what happens next" shows
        self.told = False  # the user has seen what happens next
        self.result = None  # (result, ssid, ip, words) of the last join the user asked for
        self.result_seen = False
        self.joined_at = None
        self.background = False  # the join that worked was the saved network's, retried
        self.token = _token()  # the form must send it back: another site's page cannot
        # True while a request is answered. The others wait their turn by looking every
        # _TURN_S: an asyncio.Lock's queue would hold two more frames for each waiting
        # connection, about 350 B on 64-bit and 180 B on 32-bit
        self.answering = False
        # task -> (ticks, seconds): a client's read under way, and how long it may take. The
        # serve loop cancels a read whose time is up: an asyncio.wait_for per read would cost
        # each waiting connection about 700 B more on 64-bit, 400 B on 32-bit, and a phone
        # opens six at once
        self.reading = {}
        self.view = memoryview(bytearray(_READ_SIZE))  # what a client's read brings

    async def serve(self, idle_s=_IDLE_S, max_s=_MAX_OPEN_S):
        """Serve until a join worked (returns the saved config), or `idle_s` passed without a
        visit, or `max_s` since it opened (then the device resets)."""
        import hal

        self.scans.get()
        dns_sock = _udp_socket(self.bind_ip, self.dns_port)
        http_sock = _tcp_socket(self.bind_ip, self.http_port)
        http_task = asyncio.create_task(self._accept(http_sock))
        dns_task = asyncio.create_task(self._dns(dns_sock))
        print("portal http %s dns %d ap %s" % (self.home, self.dns_port, self.ip))
        try:
            while not self._finished():
                await asyncio.sleep(0.5)
                self._time_reads()
                self._start_pending()
                if self.joining is not None:
                    continue
                if _age_s(self.opened_at) >= max_s:
                    print("portal open for %d s: restarting" % max_s)
                    hal.reset()
                if _age_s(self.used_at) >= idle_s:
                    print("portal idle for %d s: restarting" % idle_s)
                    hal.reset()
                self._retry_saved()
        finally:
            dns_task.cancel()
            dns_sock.close()
            http_task.cancel()
            http_sock.close()
        return self.cfg

    def _time_reads(self):
        """Cancel each client read whose time is up (it answers 408)."""
        for task, (at, limit_s) in list(self.reading.items()):
            if _age_s(at) >= limit_s:
                del self.reading[task]
                task.cancel()

    def _finished(self):
        if self.joined_at is None:
            return False
        if self.background:
            return True  # nobody is waiting for a page
        # close once the browser has shown the result, or after the grace period
        age = _age_s(self.joined_at)
        return age >= _JOINED_GRACE_S or (self.result_seen and age >= 1)

    def _retry_saved(self):
        """Try the saved network again now and then, as long as nobody is using the page."""
        ssid = self.cfg.get("ssid")
        if not ssid or self.retry_s is None or self.pending is not None:
            return
        if self.station.connected() or _age_s(self.retried_at) < self.retry_s:
            return
        if _age_s(self.used_at) < self.retry_s:
            return
        self.retried_at = _ticks()
        print("portal: trying the saved network %r again" % ssid)
        self.retrying = True
        self.joining = asyncio.create_task(self._join(ssid, self.cfg["password"], True))

    def _start_pending(self):
        """Start the join the user asked for, once they have seen what happens next."""
        if self.pending is None or self.joining is not None:
            return
        if not self.told and _age_s(self.used_at) < _JOIN_DELAY_S:
            return
        ssid, password = self.pending
        self.pending = None
        channel = self.station.channel(ssid)
        if self.ap is not None and channel:
            wifi.move_ap(self.ap, channel)  # the phone drops now, not in the middle of the join
        self.joining = asyncio.create_task(self._join(ssid, password))

    async def _dns(self, sock):
        while True:
            await _readable(sock)
            try:
                query, peer = sock.recvfrom(512)
            except OSError:
                continue
            try:
                reply = portaldns.portal_reply(query, self.ip)
            except Exception as exc:  # one odd packet must never stop the DNS server
                print("portal dns dropped a packet:", repr(exc))
                reply = None
            if reply:
                try:
                    sock.sendto(reply, peer)
                except OSError:
                    pass

    async def _accept(self, sock):
        """Take each connection as it comes (asyncio.start_server's would also hold its
        address in a dict of its own, for each connection)."""
        stream = asyncio.StreamReader  # loads asyncio's stream code now, not between clients
        while True:
            await _readable(sock)
            try:
                client, addr = sock.accept()
            except OSError:
                continue
            try:
                client.setblocking(False)
                both = stream(client)  # one stream reads and writes, as start_server's
                # MicroPython's scheduler holds the task: no reference to keep here
                asyncio.create_task(self._client(both, both, _address(addr)))  # noqa: RUF006
            except MemoryError:  # the heap is full for now: this connection only is lost
                client.close()

    async def _client(self, reader, writer, peer):
        self.clients += 1
        self.per_client[peer] = self.per_client.get(peer, 0) + 1
        try:
            if self.clients > _MAX_CLIENTS or self.per_client[peer] > _PER_CLIENT:
                await _send(writer, _error(503, "Too many connections. Try again in a moment."))
                await _discard(reader)
                return
            try:
                request = await _read_request(reader, self.reading, self.view)
            except HTTPError as exc:
                await _refuse(writer, exc)
                await _discard(reader)
                return
            if request is None:
                return
            while self.answering:
                await asyncio.sleep(_TURN_S)
            self.answering = True
            try:
                refused = await self._answer(writer, request)
            finally:
                self.answering = False
            if refused:
                await _discard(reader)
        except (OSError, asyncio.TimeoutError) as exc:
            print("portal client dropped:", repr(exc))
        except Exception as exc:  # a fault in one page must not take the portal down
            print("portal fault:", repr(exc))
            try:
                await _send(writer, _error(500, "Something went wrong on the meter. Try again."))
            except (OSError, asyncio.TimeoutError, MemoryError):
                pass  # a heap too full for the fault's page: the connection just closes
        finally:
            self.clients -= 1
            left = self.per_client.pop(peer, 1) - 1
            if left > 0:
                self.per_client[peer] = left
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def _answer(self, writer, request):
        """Send the reply to `request`; True when it was refused (the rest of it is read
        after the turn is given back)."""
        self.used_at = _ticks()
        try:
            reply = self._route(request)
        except HTTPError as exc:
            await _refuse(writer, exc)
            return True
        if request.method == "HEAD":
            reply = reply[:1] if isinstance(reply, list) else reply[: reply.find(b"\r\n\r\n") + 4]
        await _send(writer, reply)
        return False

    def _route(self, request):
        method = request.method
        path = request.path
        if method not in ("GET", "HEAD", "POST"):
            raise HTTPError(405, "Only GET and POST are used here.")
        if path in _NOT_FOUND:
            return response(404, b"", headers=())
        if method == "POST":
            if path != "/join":
                raise HTTPError(405, "Only the setup form can be sent here.")
            return self._join_form(request, True)
        if request.header("host") not in self.hosts:
            return _redirect(self.home)  # OS probes and any site typed while on this network
        if path == "/":
            return self._setup_page(request.query.get("ssid", ""))
        if path == "/scan":
            if self.joining is None and self.pending is None:
                self.scans.rescan()
            return _redirect("/", 303)
        if path == "/result":
            return self._result_page()
        return _redirect(self.home)

    def _setup_page(self, ssid, server=None, problem=None, status=200):
        idle = self.joining is None and self.pending is None
        networks = self.scans.get() if idle else self.scans.networks
        if server is None:
            server = self.cfg.get("server") or ""
        notice, kind = (self.reason, "info") if problem is None else (problem, "bad")
        open_ap = not self.cfg.get("ap_password")
        page = pages.setup_page(
            networks, ssid, server, notice, wifi.ap_name(), kind, self.token, open_ap
        )
        return _html(status, page)

    def _join_form(self, request, origin=False):
        """The reply to the setup form; `origin`: check where it was sent from first."""
        reply = _check_form(self, request, origin)  # the settings to save, or a page
        if not isinstance(reply, dict):
            return reply
        if (self.joining is None or self.retrying) and self.pending is None:
            # a retry of the saved network running behind the page does not hold the form up
            try:
                self._save(reply)
            except OSError as exc:
                print("portal could not save:", repr(exc))
                raise HTTPError(500, "The meter could not save the settings. Try again.") from None
            self.token = _token()  # each saved form spends its page's token
            self.result = None
            self.told = False
            self.pending = (reply["ssid"], reply["password"])  # starts once /result shows
        return _redirect("/result", 303)

    def _save(self, settings):
        import gc

        gc.collect()  # the form's checks leave the heap before config comes in
        import config

        try:
            cfg = dict(self.cfg)
            cfg.update(settings)
            cfg["wrong_password_count"] = 0
            config.save(cfg)
        finally:
            sys.modules.pop("config", None)  # loaded again only for another save
        self.cfg = cfg
        print("portal saved settings for network %r" % cfg["ssid"])

    async def _join(self, ssid, password, background=False):
        try:
            result, ip = await self.station.join(ssid, password)
            words = wifi.describe(result, ssid, ip)
            print("portal join: " + words)
            if not background:
                self.result = (result, ssid, ip, words)
            if result == "joined" and not (background and self.pending is not None):
                self.background = background
                self.joined_at = (
                    _ticks()
                )  # (a retry that got in after a form was sent does not count)
        finally:
            self.retrying = False
            self.joining = None
            if not background:
                self.used_at = _ticks()

    def _result_page(self):
        if self.pending is not None or self.joining is not None:
            self.told = True
            return _html(200, pages.joining_page(self.cfg.get("ssid", ""), wifi.ap_name()))
        if self.result is None:
            return _redirect("/", 303)
        result, ssid, _, words = self.result
        if result == "joined":
            self.result_seen = True
            return _html(200, pages.joined_page(words))
        return self._setup_page(ssid, None, words)


def _check_form(portal, request, origin):
    """portalform.join_form: its code is in the heap only while it checks the form (a form
    comes once, and the page loads before it need that heap)."""
    import portalform

    try:
        return portalform.join_form(portal, request, origin)
    finally:
        sys.modules.pop("portalform", None)


def _token():
    """A fresh random token for the setup form."""
    import binascii
    import os

    return binascii.hexlify(os.urandom(16)).decode()


def _address(addr):
    """The client's address from accept(), without its port (a slot count per address)."""
    if isinstance(addr, tuple):
        return addr[0]
    if isinstance(addr, (bytes, bytearray)) and len(addr) >= 8:
        return bytes(addr[4:8])  # the unix port's raw sockaddr_in: family, port, address
    return addr


def _redirect(location, status=302):
    return response(status, b"", headers=(("Location", location),))


def _html(status, page):
    return response(status, page, length=pages.size(page))


def _error(status, message):
    return _html(status, pages.error_page(status, message))


def _readable(sock):
    """Wait until `sock` can be read (MicroPython's asyncio has no datagram API)."""
    yield asyncio.core._io_queue.queue_read(sock)


def _tcp_socket(ip, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(socket.getaddrinfo(ip, port)[0][-1])
    sock.listen(4)
    sock.setblocking(False)
    return sock


def _udp_socket(ip, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(socket.getaddrinfo(ip, port)[0][-1])
    sock.setblocking(False)
    return sock


async def _read_request(reader, reading, view):
    """Read one request within the limits; None if the client left without sending one.

    Each read goes into `view` (Portal.view, one buffer for every client: nothing runs between
    a read and the copy of what it brought), and is timed by the serve loop (`reading`:
    Portal.reading). One frame for the whole request: a phone's six connections read side by
    side, and each frame they hold costs each of them."""
    import httpparse

    started = _ticks()
    task = asyncio.current_task()
    buf = b""
    lines = dropped = 0  # header lines the portal does not read, left out of buf, and bytes
    request = None  # once the head is read
    while True:
        if request is None:
            buf, more, size = httpparse.drop_headers(buf)
            lines += more
            dropped += size
            end = head_end(buf)
            if end >= 0:
                request = parse_head(buf[:end], lines, dropped)
                length = request.body_length()
                buf = buf[end:]
            elif len(buf) + dropped > httpparse.MAX_HEAD:
                raise HTTPError(431, "The request headers are too large.")
        if request is not None and len(buf) >= length:
            request.body = buf[:length]
            return request
        left = _REQUEST_S - _age_s(started)
        if left <= 0:
            raise HTTPError(408, "The request took too long.")
        reading[task] = (_ticks(), min(_READ_TIMEOUT_S, left))
        try:
            # small reads, each one's unread headers dropped before the next: a phone's 500
            # bytes of them are never held in one piece
            got = await reader.readinto(view if request is None else view[: length - len(buf)])
        except asyncio.CancelledError:  # the serve loop found its time up
            raise HTTPError(408, "The request took too long.") from None
        finally:
            reading.pop(task, None)
        if got is None:
            continue  # nothing to read after all
        if not got:
            if request is not None:
                raise HTTPError(400, "The form ended early.")
            if not buf:
                return None
            raise HTTPError(400, "The request ended early.")
        buf += view[:got]


async def _send(writer, data):
    """Write a response: bytes, or a page's pieces one at a time (never joined in the heap)."""
    pieces = pages.stream(data)
    try:
        for piece in pieces:
            writer.write(piece)
            await asyncio.wait_for(writer.drain(), _READ_TIMEOUT_S)
    finally:
        pieces.close()  # the page's file, when a client left halfway


async def _refuse(writer, exc):
    print("portal refused: %d %s" % (exc.status, exc.message))
    await _send(writer, _error(exc.status, exc.message))


async def _discard(reader):
    """Read what the client still sends for a moment, so closing does not reset the
    connection before it has read our error page."""
    try:
        for _ in range(16):
            if not await asyncio.wait_for(reader.read(512), 0.2):
                return
    except (OSError, asyncio.TimeoutError):
        pass


async def run_portal(cfg, reason, retry_saved=False):
    """Open the setup access point and portal; return the config once a join worked.

    After _IDLE_S without a visit, or _MAX_OPEN_S in all, the device resets and tries any
    saved network. `retry_saved`: the saved network is what failed, so keep trying it.
    """
    import hal

    ip = cfg.get("ap_ip") or _DEFAULT_AP_IP
    # A meter set up over USB has its own random password; one that never was has none,
    # since a password printed in a manual protects nothing (its page says so).
    password = cfg.get("ap_password") or ""
    if password and not 8 <= len(password) <= 63:
        print("portal: ap_password must have 8 to 63 characters; the setup network is open")
        password = ""
    station = wifi.Station()
    scans = ScanCache(station)
    scans.get()  # before the access point is up: this scan throws nobody off
    ap = hal.wlan_ap()
    wifi.open_ap(ap, wifi.ap_name(), password, ip, station.channel(cfg.get("ssid") or ""))
    print("portal: setup network %s, %s" % (wifi.ap_name(), "WPA2" if password else "open"))
    if hal.output_kind() == "sim":
        # the simulator serves on loopback, unprivileged ports
        bind_ip = "127.0.0.1"
        dns_port = _env_int("SYSBOY_PORTAL_DNS_PORT", 5300)
        http_port = _env_int("SYSBOY_PORTAL_HTTP_PORT", 8080)
        host = "%s:%d" % (bind_ip, http_port)
    else:
        bind_ip, dns_port, http_port, host = "0.0.0.0", 53, 80, ip
    portal = Portal(cfg, reason, station, ip, host, dns_port, http_port, bind_ip)
    portal.scans = scans
    portal.ap = ap
    if retry_saved:
        portal.retry_s = _env_int("SYSBOY_PORTAL_RETRY_S", _RETRY_SAVED_S)
    try:
        idle_s = _env_int("SYSBOY_PORTAL_IDLE_S", _IDLE_S)
        return await portal.serve(idle_s, _env_int("SYSBOY_PORTAL_MAX_S", _MAX_OPEN_S))
    finally:
        wifi.close_ap(ap)
