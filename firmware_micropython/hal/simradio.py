"""The simulator's radio: one radio for the station and the access point, as on the ESP32.

It answers as MicroPython's network.WLAN does on a board (ports/esp32/network_wlan.c):
- a join takes time: status() is IDLE, then CONNECTING, then GOT_IP;
- right after connect(), status() still reports the previous attempt's failure (the driver
  keeps the last disconnect reason until a new one arrives or the station gets an address:
  for stale_s, or the whole attempt if stale_s is longer); disconnect() during an attempt
  or a link clears it (ASSOC_LEAVE reads as IDLE);
- a wrong password shows as 202 (AUTH_FAIL) or as 15 (4-way handshake timeout);
- a router that is booting refuses joins with 202 until it is up;
- a joined station loses its link when the router goes away: isconnected() turns False and
  status() reports 200 (beacon timeout);
- scan() blocks, and refuses to run while a join is under way;
- the access point follows the station onto its network's channel, and its clients drop
  whenever the radio leaves the access point's channel (a scan, a join elsewhere).

The world is a JSON scenario in the file SYSBOY_SIM_RADIO, read again while it changes, so a
test can switch the router off and on as a person would:
  {"router": "up" | "off" | "booting", "join_s": 2 or [1, 3], "stale_s": 1, "scan_s": 2.5,
   "beacon_loss_s": 1, "wrong_password": 202 or 15,
   "networks": [{"ssid": "Home", "channel": 11, "rssi": -48, "password": "hunter2hunter2"}]}
The router is the first network's name; a network without "password" takes any. Without a
scenario every name joins with any password, quickly (other tests rely on a fast join);
SYSBOY_SIM_WIFI="wrong password" or "not found" makes every join fail that way.
Each radio event prints one `radio ...` line.
"""

import json
import os
import time

from micropython import const

from hal.sim import _env, _say, ticks_diff, ticks_ms

_STAT_IDLE = const(1000)
_STAT_CONNECTING = const(1001)
_STAT_GOT_IP = const(1010)
_STAT_BEACON_TIMEOUT = const(200)
_STAT_NO_AP_FOUND = const(201)
_STAT_WRONG_PASSWORD = const(202)
# ESP-IDF's wifi_err_reason_t, passed through by status()
_REASON_4WAY_HANDSHAKE_TIMEOUT = const(15)
_PM_NONE = const(0)
_PM_PERFORMANCE = const(1)  # the ESP32's default: the radio sleeps between beacons
_PM_POWERSAVE = const(2)

# without a scenario: quick, but never instant
_JOIN_S = const(0.3)
_STALE_S = const(0.1)
_SCAN_S = const(0.05)
_BEACON_LOSS_S = const(0.5)
_AP_FIRST_CLIENT_MS = const(1000)  # a phone needs longer than this to join a new access point
_RE_READ_MS = const(200)

# without a scenario: (ssid, channel, rssi, security) of the networks around
_DEFAULT_NETWORKS = const(
    (
        ("SysboyHome", 6, -48, 3),
        ("Neighbour 5G", 36, -71, 3),
        ("Cafe Guest", 11, -80, 0),
        ("SysboyHome", 1, -63, 3),
    )
)


class Radio:
    """The one radio: the station's joins, the access point's channel, the world around."""

    def __init__(self, path=None):
        self.path = _env("SYSBOY_SIM_RADIO") if path is None else path
        self.world = {}  # the scenario as last read
        self.text = None
        self.read_at = None
        self.sta_on = False
        self.ap_on = False
        self.ap_up_at = 0
        self.ap_channel = 1
        self.reason = 0  # the driver's last disconnect reason, kept until a join works
        self.attempt = None  # (ssid, key, started, join ms, stale ms) while a join runs
        self.joined = None  # the network joined
        self.lost_at = None  # when the router went away under the joined station
        self.pm = _PM_PERFORMANCE
        self.ap_drops = 0  # times the access point's clients were thrown off

    # -- the world ---------------------------------------------------------------------

    def air(self):
        """The scenario now: the file read again at most every _RE_READ_MS (the last good
        one while it is being replaced)."""
        now = ticks_ms()
        if not self.path or (
            self.read_at is not None and ticks_diff(now, self.read_at) < _RE_READ_MS
        ):
            return self.world
        self.read_at = now
        try:
            with open(self.path) as f:
                text = f.read()
            if text != self.text:
                self.text = text
                world = json.loads(text)
                if isinstance(world, dict):
                    self.world = world
                    _say("radio world " + str(world.get("router", "up")))
        except (OSError, ValueError):
            pass
        return self.world

    def _ms(self, name, default):
        """A duration from the scenario in ms: seconds, or [low, high] for a random one."""
        value = self.air().get(name, default)
        if isinstance(value, list):
            value = value[0] + (value[1] - value[0]) * os.urandom(1)[0] / 255
        return int(float(value) * 1000)

    def _state(self, ssid):
        """The router's state ("up", "off", "booting") for a network of that name."""
        nets = self.air().get("networks")
        if nets and nets[0]["ssid"] == ssid:
            return self.air().get("router", "up")
        return "up"

    def _visible(self):
        """The networks on the air: dicts with ssid, channel, rssi and maybe a password."""
        nets = self.air().get("networks")
        if not isinstance(nets, list):
            return [
                {"ssid": n[0], "channel": n[1], "rssi": n[2], "security": n[3], "id": i}
                for i, n in enumerate(_DEFAULT_NETWORKS)
            ]
        return [n for n in nets if self._state(n["ssid"]) != "off"]

    def _find(self, ssid):
        """The strongest access point of `ssid` on the air (without a scenario: any name)."""
        best = None
        for net in self._visible():
            if net["ssid"] == ssid and (best is None or net.get("rssi", -60) > best["rssi"]):
                best = {"ssid": ssid, "channel": net.get("channel", 6),
                        "rssi": net.get("rssi", -60), "password": net.get("password")}  # fmt: skip
        if best is None and not isinstance(self.air().get("networks"), list):
            return {"ssid": ssid, "channel": 6, "rssi": -55, "password": None}
        return best

    # -- time passes -------------------------------------------------------------------

    def step(self):
        """Bring the radio up to now: finish a join, or notice the router went away."""
        now = ticks_ms()
        if self.attempt is not None:
            ssid, key, started, join_ms, _ = self.attempt
            if ticks_diff(now, started) >= join_ms:
                self.attempt = None
                self._finish(ssid, key)
        if self.joined is not None:
            net = self._find(self.joined["ssid"])
            if net is not None and self._state(net["ssid"]) == "up":
                self.lost_at = None
            elif self.lost_at is None:
                self.lost_at = now
            elif ticks_diff(now, self.lost_at) >= self._ms("beacon_loss_s", _BEACON_LOSS_S):
                _say("radio link lost: %r went away" % self.joined["ssid"])
                self.joined = None
                self.lost_at = None
                self.reason = _STAT_BEACON_TIMEOUT

    def _finish(self, ssid, key):
        legacy = _env("SYSBOY_SIM_WIFI")
        net = self._find(ssid)
        reason = 0
        if legacy == "not found" or net is None:
            reason = _STAT_NO_AP_FOUND
        elif legacy == "wrong password" or self._state(ssid) == "booting":
            reason = _STAT_WRONG_PASSWORD
        elif net["password"] is not None and key != net["password"]:
            reason = int(self.air().get("wrong_password", _STAT_WRONG_PASSWORD))
        if reason:
            self.reason = reason
            _say("radio join %r failed: %d" % (ssid, reason))
        else:
            self.joined = net
            self.reason = 0
            _say("radio joined %r on channel %d" % (ssid, net["channel"]))
            if self.ap_on and self.ap_channel != net["channel"]:
                self.ap_channel = net["channel"]
                self.drop("the access point moved to channel %d" % net["channel"])

    def drop(self, why):
        """The access point's clients lose it (once it has been up long enough to have any)."""
        if self.ap_on and ticks_diff(ticks_ms(), self.ap_up_at) >= _AP_FIRST_CLIENT_MS:
            self.ap_drops += 1
            _say("radio ap clients dropped: " + why)

    # -- what the station interface asks ------------------------------------------------

    def connect(self, ssid, key):
        if not self.sta_on:
            raise OSError("STA must be active")
        if self.joined is not None:
            _say("radio left %r" % self.joined["ssid"])
            self.joined = None
        net = self._find(ssid)
        if self.ap_on and (net is None or net["channel"] != self.ap_channel):
            self.drop("the station searched for %r" % ssid)
        # stale_s may outlast the join: then the old failure shows until this attempt's outcome
        self.attempt = (
            ssid,
            key,
            ticks_ms(),
            self._ms("join_s", _JOIN_S),
            self._ms("stale_s", _STALE_S),
        )
        _say("radio connect %r" % ssid)

    def disconnect(self):
        if self.joined is not None or self.attempt is not None:
            self.reason = 0  # the driver reports ASSOC_LEAVE, which status() reads as IDLE
        self.attempt = None
        self.joined = None

    def status(self):
        self.step()
        if self.joined is not None:
            return _STAT_GOT_IP
        if self.attempt is not None:
            if ticks_diff(ticks_ms(), self.attempt[2]) < self.attempt[4]:
                return self.reason or _STAT_IDLE  # the last attempt's news, still
            return _STAT_CONNECTING
        return self.reason or _STAT_IDLE

    def scan(self):
        if not self.sta_on:
            raise OSError("STA must be active")
        self.step()
        if self.attempt is not None:
            raise OSError("Wifi Internal State Error")  # the ESP32 will not scan mid-join
        _say("radio scan")
        time.sleep(self._ms("scan_s", _SCAN_S) / 1000)  # blocks, as the board's scan does
        self.drop("the station scanned")
        found = []
        for net in self._visible():
            found.append(
                (
                    net["ssid"].encode(),
                    b"\x02\x00\x00\x00\x00" + bytes([net.get("id", 9) + 1]),
                    net.get("channel", 6),
                    net.get("rssi", -60),
                    net.get("security", 0 if net.get("password") == "" else 3),
                    False,
                )
            )
        return found


class WLAN:
    """The subset of network.WLAN the firmware uses, on the shared radio."""

    PM_NONE = _PM_NONE
    PM_PERFORMANCE = _PM_PERFORMANCE
    PM_POWERSAVE = _PM_POWERSAVE

    def __init__(self, interface, radio):
        self.interface = interface
        self.radio = radio
        self.settings = {}
        if interface == 0:
            self._ip = ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
        else:
            self._ip = ("192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")

    def active(self, on=None):
        radio = self.radio
        if on is None:
            return radio.sta_on if self.interface == 0 else radio.ap_on
        if self.interface == 0:
            radio.sta_on = bool(on)
            if not on:
                radio.disconnect()
        elif bool(on) != radio.ap_on:
            radio.ap_on = bool(on)
            radio.ap_up_at = ticks_ms()
            if on and radio.joined is not None:
                radio.ap_channel = radio.joined["channel"]  # one radio: one channel
            _say("radio ap %s on channel %d" % ("up" if on else "down", radio.ap_channel))
        return None

    def config(self, *names, **settings):
        radio = self.radio
        if settings:
            if "pm" in settings:
                radio.pm = int(settings["pm"])
                _say("radio pm %d" % radio.pm)
            if "channel" in settings and self.interface == 1:
                channel = int(settings["channel"])
                if radio.joined is None and channel != radio.ap_channel:
                    radio.ap_channel = channel
                    _say("radio ap on channel %d" % channel)
                    radio.drop("the access point changed channel")
            self.settings.update(settings)
            return None
        name = names[0]
        if name == "mac":
            import binascii

            from hal.sim import unique_id

            return binascii.unhexlify(unique_id()[:12])
        if name == "pm":
            return radio.pm
        if name == "channel":
            return radio.joined["channel"] if radio.joined is not None else radio.ap_channel
        return self.settings.get(name)

    def connect(self, ssid=None, key=None, **settings):
        self.radio.connect(ssid or "", key)

    def disconnect(self):
        self.radio.disconnect()

    def isconnected(self):
        if self.interface != 0:
            return False  # no phone on the simulated access point
        self.radio.step()
        return self.radio.sta_on and self.radio.joined is not None

    def status(self, param=None):
        if param == "rssi":
            if not self.isconnected():
                raise OSError("Wifi Not Connected")
            return self.radio.joined["rssi"]
        return self.radio.status()

    def ifconfig(self, settings=None):
        if settings is not None:
            self._ip = tuple(settings)
            return None
        return self._ip

    def scan(self):
        return self.radio.scan()


_radio = None
_interfaces = {}


def interface(number):
    """The station (0) or access-point (1) interface: one object each, as on the board."""
    global _radio
    if _radio is None:
        _radio = Radio()
    if number not in _interfaces:
        _interfaces[number] = WLAN(number, _radio)
    return _interfaces[number]
