"""Station Wi-Fi: join the home network and say in words why a join failed (rejoin.py keeps
trying the saved network, in linked and update mode only).

A real ESP32 radio is slow and says misleading things for a moment, so nothing is believed
on the first status read: after `connect()`, `status()` may still report the previous
attempt's failure until the driver has moved on (CONNECTING) or 1.5 s have passed.
"""

import asyncio

from micropython import const

# mypy sees the ESP32 stubs here. A constant, so MicroPython drops the block when it compiles.
TYPE_CHECKING = const(False)
if TYPE_CHECKING:
    import network

# The module's constants are private const(): MicroPython folds them into the code, where a
# public name would cost the heap a name for as long as the meter runs.
# network.STAT_* and AUTH_* as the ESP32 port defines them (tests compare with the stubs)
_STAT_IDLE = const(1000)
_STAT_CONNECTING = const(1001)
_STAT_GOT_IP = const(1010)
_STAT_BEACON_TIMEOUT = const(200)
_STAT_NO_AP_FOUND = const(201)
_STAT_WRONG_PASSWORD = const(202)
_STAT_ASSOC_FAIL = const(203)
_STAT_HANDSHAKE_TIMEOUT = const(204)
_AUTH_OPEN = const(0)
_AUTH_WPA2_PSK = const(3)
# NO_AP_FOUND, or none with a usable security or signal (ESP-IDF's reasons 210-212)
_NOT_FOUND_CODES = const((201, 210, 211, 212))
# ESP-IDF's reason 15, which status() passes through (the router never finished the 4-way
# handshake, which is how a wrong password or a signal too weak for it often shows), and
# HANDSHAKE_TIMEOUT
_WRONG_OR_WEAK_CODES = const((15, 204))

# what a join came to
_JOINED = const("joined")
_WRONG_PASSWORD = const("wrong password")
_WRONG_OR_WEAK = const("wrong password or weak signal")
_NOT_FOUND = const("network not found")
_FAILED = const("could not connect")
_NO_ANSWER = const("no answer")

_JOIN_TIMEOUT_S = const(30)
_STALE_S = const(1.5)  # after connect(), failures are not believed before CONNECTING or this long
# Refusals must go on this long, with no join in between, before the setup portal opens:
# a router that reboots refuses joins for a few seconds and must never open it.
_PORTAL_AFTER_S = const(300)
_MAX_NETWORKS = const(20)


def _env_int(name: str, default: int) -> int:
    """An integer from the environment (the simulator has one; the board does not)."""
    import os

    getenv = getattr(os, "getenv", None)
    value = getenv(name) if getenv else None
    try:
        return int(value) if value else default
    except ValueError:
        return default


def ap_name() -> str:
    """The setup network's name, `Sysboy-XXXX` with the last four hex digits of the MAC."""
    import hal

    return "Sysboy-" + hal.unique_id()[-4:].upper()


def describe(result: str, ssid: str, ip: "str | None" = None) -> str:
    """One sentence a user understands for a join `result`."""
    if result == _JOINED:
        return 'Joined "%s". The meter\'s address there is %s.' % (ssid, ip)
    if result == _WRONG_PASSWORD:
        return 'The password for "%s" was not accepted. Check it and try again.' % ssid
    if result == _WRONG_OR_WEAK:
        return (
            '"%s" did not finish letting the meter in: the password is wrong, or the signal '
            "is too weak. Check the password, or bring the meter nearer the router." % ssid
        )
    if result == _NOT_FOUND:
        return 'No network named "%s" answered. Is it switched on and in range?' % ssid
    if result == _NO_ANSWER:
        return '"%s" did not let the meter in within %d seconds.' % (ssid, _JOIN_TIMEOUT_S)
    return 'Could not connect to "%s".' % ssid


def best_networks(found: list, limit: int = _MAX_NETWORKS) -> list:
    """Scan results as (ssid, rssi, secured), one per name (strongest), strongest first."""
    best: dict = {}
    for entry in found:
        try:
            name = bytes(entry[0]).decode("utf-8")
        except UnicodeError:
            continue  # cannot be shown or typed back; the user can still type another name
        rssi = int(entry[3])
        if not name or "\x00" in name:
            continue  # hidden network
        old = best.get(name)
        if old is None or rssi > old[0]:
            best[name] = (rssi, entry[4] != 0)
    nets = [(name, v[0], v[1]) for name, v in best.items()]
    nets.sort(key=lambda n: (-n[1], n[0]))
    return nets[:limit]


def open_ap(
    ap: "network.WLAN", name: str, password: str, ip: str, channel: "int | None" = None
) -> None:
    """Start the setup access point `name` at `ip` (a /24 with itself as gateway and DNS),
    WPA2 with `password`, or open when it is "" (a meter never set up over USB),
    on `channel` if given: the home network's, so that joining it does not move the access point
    (the ESP32 has one radio) and throw the phone off."""
    ap.active(True)
    if password:
        ap.config(ssid=name, key=password, security=_AUTH_WPA2_PSK)
    else:
        ap.config(ssid=name, security=_AUTH_OPEN)
    if channel:
        move_ap(ap, channel)
    ap.ifconfig((ip, "255.255.255.0", ip, ip))


def move_ap(ap: "network.WLAN", channel: int) -> None:
    """Put the access point on `channel` (its clients drop for a moment if it moves)."""
    try:
        if ap.config("channel") != channel:
            ap.config(channel=channel)
    except (OSError, ValueError) as exc:  # the station holds the radio on another channel
        print("wifi: the setup network stays on its channel (%r)" % exc)


def set_power_save(wlan: "network.WLAN", on: bool) -> None:
    """Wi-Fi power save on or off. Off by default: with it on, the radio sleeps between the
    router's beacons and every frame from the PC waits for the next one (about 100 ms)."""
    try:
        wlan.config(pm=wlan.PM_PERFORMANCE if on else wlan.PM_NONE)
    except (AttributeError, OSError, ValueError) as exc:  # a port without power management
        print("wifi: power save not set (%r)" % exc)


def close_ap(ap: "network.WLAN") -> None:
    """Switch the setup access point off."""
    ap.active(False)


class Station:
    """The station interface: join, keep joined, notice a lost link, scan."""

    def __init__(
        self, wlan: "network.WLAN | None" = None, poll_s: float = 0.25, power_save: bool = False
    ) -> None:
        if wlan is None:
            import hal

            wlan = hal.wlan_station()
        self.wlan = wlan
        self.poll_s = poll_s
        self.power_save = power_save
        self.stale_s = _STALE_S
        self.portal_after_s = _env_int("SYSBOY_WIFI_PORTAL_AFTER_S", _PORTAL_AFTER_S)
        self.last = ""  # the last result, in words
        self.channels: dict = {}  # network name -> channel of its strongest access point

    def connected(self) -> bool:
        """True while joined with an address (polled: the radio notices a lost router in
        seconds, long before a silent TCP link would)."""
        return bool(self.wlan.isconnected())

    def ip(self) -> "str | None":
        """The station's IPv4 address, or None when not joined."""
        return self.wlan.ifconfig()[0] if self.wlan.isconnected() else None

    def rssi(self) -> "int | None":
        """Signal strength in dBm, or None when not joined or unknown."""
        if not self.wlan.isconnected():
            return None
        try:
            return int(self.wlan.status("rssi"))
        except (OSError, TypeError, ValueError):
            return None

    def scan(self) -> "list | None":
        """Networks in range as (ssid, rssi, secured), strongest first; None if scanning failed.

        Blocks for 2-3 s on the board, and throws the setup network's clients off meanwhile."""
        try:
            self.wlan.active(True)
            found = self.wlan.scan()
        except OSError:
            return None  # e.g. the ESP32 refuses to scan while it is joining
        networks = best_networks(found)
        channels = best_channels(found)
        self.channels = {n[0]: channels[n[0]] for n in networks}  # the listed ones only
        return networks

    def channel(self, ssid: str) -> "int | None":
        """The channel `ssid` was last seen on, or None if the last scan did not see it."""
        return self.channels.get(ssid)

    async def join(self, ssid: str, password: str, timeout_s: float = _JOIN_TIMEOUT_S) -> tuple:
        """Try to join `ssid` for up to `timeout_s`; return (result, ip or None)."""
        import hal

        wlan = self.wlan
        wlan.active(True)
        set_power_save(wlan, self.power_save)
        try:
            # a few driver retries, then a status we can put in words (the default retries forever)
            wlan.config(reconnects=3)
        except (OSError, TypeError, ValueError):
            pass
        try:
            if wlan.isconnected():
                wlan.disconnect()
            wlan.connect(ssid, password)
        except OSError:
            return self._done(_FAILED, ssid, None)
        started = hal.ticks_ms()
        moving = False  # CONNECTING seen: from now on a failure is this attempt's own
        while True:
            status = wlan.status()
            if status == _STAT_GOT_IP or wlan.isconnected():
                return self._done(_JOINED, ssid, wlan.ifconfig()[0])
            waited = hal.ticks_diff(hal.ticks_ms(), started) / 1000
            if status == _STAT_CONNECTING:
                moving = True
            failure = _failure(status) if moving or waited >= self.stale_s else None
            if failure is not None or waited >= timeout_s:
                # stop the driver's own retries so the next attempt starts clean
                try:
                    wlan.disconnect()
                except OSError:
                    pass
                return self._done(failure or _NO_ANSWER, ssid, None)
            await asyncio.sleep(self.poll_s)

    def _done(self, result: str, ssid: str, ip: "str | None") -> tuple:
        self.last = describe(result, ssid, ip)
        return result, ip


def best_channels(found: list) -> dict:
    """Network name -> the channel of its strongest access point, from scan results."""
    best: dict = {}
    for entry in found:
        try:
            name = bytes(entry[0]).decode("utf-8")
        except UnicodeError:
            continue
        old = best.get(name)
        if old is None or int(entry[3]) > old[0]:
            best[name] = (int(entry[3]), int(entry[2]))
    return {name: v[1] for name, v in best.items()}


def _failure(status: int) -> "str | None":
    """The result for a failed station status, or None while still trying."""
    if status == _STAT_WRONG_PASSWORD:
        return _WRONG_PASSWORD
    if status in _WRONG_OR_WEAK_CODES:
        return _WRONG_OR_WEAK
    if status in _NOT_FOUND_CODES:
        return _NOT_FOUND
    if status in (_STAT_ASSOC_FAIL, _STAT_BEACON_TIMEOUT):
        return _FAILED
    return None
