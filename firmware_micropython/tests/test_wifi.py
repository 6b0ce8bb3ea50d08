"""The station manager against a scripted stand-in for the ESP32's network.WLAN."""

import rejoin
import wifi
from support import FW


class ScriptedWLAN:
    """network.WLAN's station subset: each connect() starts the next script of `attempts`
    (the last one repeats); status() walks through it, then stays on its last entry."""

    PM_NONE = 0
    PM_PERFORMANCE = 1

    def __init__(self, statuses=(), found=(), attempts=None):
        self.attempts = [list(a) for a in attempts] if attempts else [list(statuses)]
        self.statuses = list(self.attempts[0])
        self.found = list(found)
        self.calls = []
        self.on = False
        self.joined = False
        self.scan_error = False

    def active(self, on=None):
        if on is None:
            return self.on
        self.on = bool(on)
        return None

    def config(self, *args, **kwargs):
        self.calls.append(("config", args, kwargs))

    def connect(self, ssid, password):
        self.calls.append(("connect", ssid, password))
        self.statuses = list(self.attempts.pop(0) if len(self.attempts) > 1 else self.attempts[0])

    def disconnect(self):
        self.calls.append(("disconnect",))
        self.joined = False

    def status(self, param=None):
        if param == "rssi":
            return -61
        value = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        self.joined = value == FW.STAT_GOT_IP
        return value

    def isconnected(self):
        return self.joined

    def ifconfig(self):
        return ("10.0.0.7", "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def scan(self):
        if self.scan_error:
            raise OSError(-1)
        return self.found


def _station(statuses=(), attempts=None):
    return wifi.Station(ScriptedWLAN(statuses, attempts=attempts), poll_s=0.01)


async def test_join_reports_joined_with_the_address():
    station = _station([FW.STAT_CONNECTING, FW.STAT_CONNECTING, FW.STAT_GOT_IP])
    result, ip = await station.join("Home", "secret123")
    assert (result, ip) == (FW.JOINED, "10.0.0.7")
    assert ("connect", "Home", "secret123") in station.wlan.calls
    assert "10.0.0.7" in station.last and "Home" in station.last
    assert station.connected() and station.ip() == "10.0.0.7" and station.rssi() == -61


async def test_power_save_is_off_unless_asked_for():
    station = _station([FW.STAT_GOT_IP])
    await station.join("Home", "secret123")
    assert ("config", (), {"pm": ScriptedWLAN.PM_NONE}) in station.wlan.calls
    station = wifi.Station(ScriptedWLAN([FW.STAT_GOT_IP]), poll_s=0.01, power_save=True)
    await station.join("Home", "secret123")
    assert ("config", (), {"pm": ScriptedWLAN.PM_PERFORMANCE}) in station.wlan.calls


async def test_join_failures_in_words():
    cases = (
        (FW.STAT_WRONG_PASSWORD, FW.WRONG_PASSWORD, "password"),
        (FW.REASON_4WAY_HANDSHAKE_TIMEOUT, FW.WRONG_OR_WEAK, "too weak"),
        (FW.STAT_HANDSHAKE_TIMEOUT, FW.WRONG_OR_WEAK, "password is wrong"),
        (FW.STAT_NO_AP_FOUND, FW.NOT_FOUND, "No network named"),
        (211, FW.NOT_FOUND, "No network named"),
        (FW.STAT_ASSOC_FAIL, FW.FAILED, "Could not connect"),
    )
    for status, want, words in cases:
        station = _station([FW.STAT_CONNECTING, status])
        result, ip = await station.join("Home", "secret123")
        assert (result, ip) == (want, None), status
        assert words in station.last, station.last
        # the driver's own retries are stopped so the next attempt starts clean
        assert station.wlan.calls[-1] == ("disconnect",)
        assert station.ip() is None and station.rssi() is None


async def test_the_last_attempts_failure_is_not_believed_right_after_connect():
    # status() still says NO_AP_FOUND (and the wrong password) from before, then moves on
    stale = [FW.STAT_NO_AP_FOUND] * 3 + [FW.STAT_WRONG_PASSWORD] * 2
    station = _station(stale + [FW.STAT_CONNECTING] * 3 + [FW.STAT_GOT_IP])
    assert await station.join("Home", "secret123") == (FW.JOINED, "10.0.0.7")


async def test_a_failure_that_stays_is_believed_after_the_grace_period():
    station = _station([FW.STAT_NO_AP_FOUND])
    station.stale_s = 0.05
    assert await station.join("Home", "secret123") == (FW.NOT_FOUND, None)
    # ... but once the driver said CONNECTING, its next failure is this attempt's own
    station = _station([FW.STAT_CONNECTING, FW.STAT_WRONG_PASSWORD])
    station.stale_s = 60
    assert await station.join("Home", "secret123") == (FW.WRONG_PASSWORD, None)


async def test_join_gives_up_after_the_timeout():
    station = _station([FW.STAT_CONNECTING])
    result, ip = await station.join("Home", "secret123", timeout_s=0.05)
    assert (result, ip) == (FW.NO_ANSWER, None)
    assert "did not let the meter in" in station.last


async def test_router_down_is_retried_and_never_given_up():
    attempts = [[FW.STAT_CONNECTING, FW.STAT_NO_AP_FOUND]] * 6 + [[FW.STAT_GOT_IP]]
    station = _station(attempts=attempts)
    station.portal_after_s = 0
    seen = []
    ip = await rejoin.stay_joined(
        station, "Home", "secret123", report=lambda r, a: seen.append(r), first_delay_s=0.001
    )
    assert ip == "10.0.0.7"
    assert seen == [FW.NOT_FOUND] * 6 + [FW.JOINED]


async def test_a_rebooting_router_never_gives_up_even_when_it_refuses_a_while():
    # away, then refusing joins (AUTH_FAIL) while it boots, then up: the password was right
    away = [[FW.STAT_CONNECTING, FW.STAT_NO_AP_FOUND]] * 3
    booting = [[FW.STAT_CONNECTING, FW.STAT_WRONG_PASSWORD]] * 5
    station = _station(attempts=away + booting + [[FW.STAT_GOT_IP]])
    station.portal_after_s = 0.5  # longer than the refusals last
    seen = []
    ip = await rejoin.stay_joined(
        station, "Home", "secret123", report=lambda r, a: seen.append(r), first_delay_s=0.001,
        max_delay_s=0.01,
    )  # fmt: skip
    assert ip == "10.0.0.7"
    assert seen.count(FW.WRONG_PASSWORD) == 5


async def test_refusals_spread_over_the_window_give_up_for_the_portal():
    attempts = [[FW.STAT_CONNECTING, FW.STAT_WRONG_PASSWORD]]
    station = _station(attempts=attempts)
    station.portal_after_s = 0.2
    seen = []
    ip = await rejoin.stay_joined(
        station, "Home", "nope-nope", report=lambda r, a: seen.append(r), first_delay_s=0.02,
        max_delay_s=0.05,
    )  # fmt: skip
    assert ip is None
    assert len(seen) >= FW.PORTAL_AFTER_REFUSALS and set(seen) == {FW.WRONG_PASSWORD}
    # a not-found in between starts the count again: the router was away, not the password
    refused = [FW.STAT_CONNECTING, FW.STAT_WRONG_PASSWORD]
    away = [FW.STAT_CONNECTING, FW.STAT_NO_AP_FOUND]
    station = _station(attempts=[refused, refused, away, refused, refused, [FW.STAT_GOT_IP]])
    station.portal_after_s = 0
    assert await rejoin.stay_joined(station, "Home", "x" * 8, first_delay_s=0.001) == "10.0.0.7"


async def test_stay_joined_keeps_a_live_connection():
    station = _station([FW.STAT_GOT_IP])
    station.wlan.joined = True
    assert await rejoin.stay_joined(station, "Home", "secret123") == "10.0.0.7"
    assert not [c for c in station.wlan.calls if c[0] == "connect"]


def test_scan_is_deduplicated_sorted_and_skips_hidden_and_unreadable_names():
    found = [
        (b"Home", b"\x01" * 6, 1, -70, 3, False),
        (b"Cafe", b"\x02" * 6, 6, -50, 0, False),
        (b"Home", b"\x03" * 6, 11, -40, 3, False),
        (b"", b"\x04" * 6, 1, -30, 3, True),
        (b"\xff\xfe", b"\x05" * 6, 1, -20, 3, False),
        (b"Attic", b"\x06" * 6, 1, -50, 4, False),
    ]
    station = wifi.Station(ScriptedWLAN([FW.STAT_IDLE], found))
    assert station.scan() == [("Home", -40, True), ("Attic", -50, True), ("Cafe", -50, False)]
    assert station.channel("Home") == 11 and station.channel("Cafe") == 6
    assert station.channel("Elsewhere") is None
    station.wlan.scan_error = True
    assert station.scan() is None


def test_scan_list_is_capped():
    found = [(b"net%02d" % i, b"", 1, -90 + i, 3, False) for i in range(40)]
    nets = wifi.best_networks(found)
    assert len(nets) == FW.MAX_NETWORKS
    assert nets[0] == ("net39", -51, True)


def test_open_ap_is_wpa2_with_a_subnet_of_its_own():
    ap = ScriptedWLAN([FW.STAT_IDLE])
    addresses = []
    ap.ifconfig = lambda conf=None: addresses.append(conf)
    wifi.open_ap(ap, "Sysboy-AB12", "sysboy2000", "192.168.4.1")
    assert ap.on
    assert ap.calls == [
        ("config", (), {"ssid": "Sysboy-AB12", "key": "sysboy2000", "security": 3}),
    ]
    assert addresses == [("192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")]
    wifi.close_ap(ap)
    assert not ap.on


def test_without_a_password_the_setup_network_is_open():
    ap = ScriptedWLAN([FW.STAT_IDLE])
    ap.ifconfig = lambda conf=None: None
    wifi.open_ap(ap, "Sysboy-AB12", "", "192.168.4.1")
    assert ap.calls == [("config", (), {"ssid": "Sysboy-AB12", "security": 0})]


def test_open_ap_on_the_home_networks_channel():
    ap = ScriptedWLAN([FW.STAT_IDLE])
    ap.ifconfig = lambda conf=None: None
    wifi.open_ap(ap, "Sysboy-AB12", "sysboy2000", "192.168.4.1", channel=11)
    assert ("config", (), {"channel": 11}) in ap.calls


def test_describe_names_every_result():
    for result in (
        FW.JOINED, FW.WRONG_PASSWORD, FW.WRONG_OR_WEAK, FW.NOT_FOUND, FW.FAILED,
        FW.NO_ANSWER,
    ):  # fmt: skip
        words = wifi.describe(result, "Home", "10.0.0.7")
        assert "Home" in words and words.endswith((".", "?")), words
