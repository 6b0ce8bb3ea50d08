"""Station Wi-Fi: join the home network, retry forever, and say in words why a join failed."""

import asyncio

# mypy sees the ESP32 stubs here; MicroPython never runs this import (no typing at run time)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    import network

# network.STAT_* and AUTH_WPA2_PSK as the ESP32 port defines them (tests compare with the stubs)
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
AUTH_WPA2_PSK = 3

_NOT_FOUND = (STAT_NO_AP_FOUND, 210, 211, 212)  # ... or none with a usable security/signal
_WRONG_PASSWORD = (STAT_WRONG_PASSWORD, STAT_HANDSHAKE_TIMEOUT)

JOINED = "joined"
WRONG_PASSWORD = "wrong password"
NOT_FOUND = "network not found"
FAILED = "could not connect"
NO_ANSWER = "no answer"

JOIN_TIMEOUT_S = 30
MAX_NETWORKS = 20


def ap_name() -> str:
    """The setup network's name, `Sysboy-XXXX` with the last four hex digits of the MAC."""
    import hal

    return "Sysboy-" + hal.unique_id()[-4:].upper()


def describe(result: str, ssid: str, ip: "str | None" = None) -> str:
    """One sentence a user understands for a join `result`."""
    if result == JOINED:
        return 'Joined "%s". The meter\'s address there is %s.' % (ssid, ip)
    if result == WRONG_PASSWORD:
        return 'The password for "%s" was not accepted. Check it and try again.' % ssid
    if result == NOT_FOUND:
        return 'No network named "%s" answered. Is it switched on and in range?' % ssid
    if result == NO_ANSWER:
        return '"%s" did not let the meter in within %d seconds.' % (ssid, JOIN_TIMEOUT_S)
    return 'Could not connect to "%s".' % ssid


def best_networks(found: list, limit: int = MAX_NETWORKS) -> list:
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


def open_ap(ap: "network.WLAN", name: str, password: str, ip: str) -> None:
    """Start the WPA2 setup access point `name` at `ip` (a /24 with itself as gateway and DNS)."""
    ap.active(True)
    ap.config(ssid=name, key=password, security=AUTH_WPA2_PSK)
    ap.ifconfig((ip, "255.255.255.0", ip, ip))


def close_ap(ap: "network.WLAN") -> None:
    """Switch the setup access point off."""
    ap.active(False)


class Station:
    """The station interface: join, keep joined, scan."""

    def __init__(self, wlan: "network.WLAN | None" = None, poll_s: float = 0.25) -> None:
        if wlan is None:
            import hal

            wlan = hal.wlan_station()
        self.wlan = wlan
        self.poll_s = poll_s
        self.last = ""  # the last result, in words

    def connected(self) -> bool:
        """True while joined with an address."""
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
        """Networks in range as (ssid, rssi, secured), strongest first; None if scanning failed."""
        try:
            self.wlan.active(True)
            found = self.wlan.scan()
        except OSError:
            return None  # e.g. the ESP32 refuses to scan while it is joining
        return best_networks(found)

    async def join(self, ssid: str, password: str, timeout_s: float = JOIN_TIMEOUT_S) -> tuple:
        """Try to join `ssid` for up to `timeout_s`; return (result, ip or None)."""
        wlan = self.wlan
        wlan.active(True)
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
            return self._done(FAILED, ssid, None)
        waited = 0.0
        while True:
            status = wlan.status()
            if status == STAT_GOT_IP or wlan.isconnected():
                return self._done(JOINED, ssid, wlan.ifconfig()[0])
            failure = _failure(status)
            if failure is not None or waited >= timeout_s:
                # stop the driver's own retries so the next attempt starts clean
                try:
                    wlan.disconnect()
                except OSError:
                    pass
                return self._done(failure or NO_ANSWER, ssid, None)
            await asyncio.sleep(self.poll_s)
            waited += self.poll_s

    async def stay_joined(
        self,
        ssid: str,
        password: str,
        wrong_password_limit: int = 3,
        report: "Callable[[str, str | None], None] | None" = None,
        first_delay_s: float = 1.0,
        max_delay_s: float = 30.0,
    ) -> "str | None":
        """Join and retry forever with backoff: the IP once joined, None after
        `wrong_password_limit` wrong passwords in a row (a router that is down never gives up)."""
        if self.connected():
            return self.ip()  # already joined, e.g. by the setup portal a moment ago
        delay = first_delay_s
        wrong = 0
        while True:
            result, ip = await self.join(ssid, password)
            if report is not None:
                report(result, ip)
            if result == JOINED:
                return ip
            wrong = wrong + 1 if result == WRONG_PASSWORD else 0
            if wrong >= wrong_password_limit:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)

    def _done(self, result: str, ssid: str, ip: "str | None") -> tuple:
        self.last = describe(result, ssid, ip)
        return result, ip


def _failure(status: int) -> "str | None":
    """The result for a failed station status, or None while still trying."""
    if status in _WRONG_PASSWORD:
        return WRONG_PASSWORD
    if status in _NOT_FOUND:
        return NOT_FOUND
    if status in (STAT_ASSOC_FAIL, STAT_BEACON_TIMEOUT):
        return FAILED
    return None
