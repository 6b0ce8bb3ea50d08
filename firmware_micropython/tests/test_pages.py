"""The setup pages and form checks: escaped, no JavaScript, small (both runtimes)."""

import re

import pages
import portal
import portalform
from httpparse import HTTPError, decode_form, parse_head, url_quote
from support import heap_kept, new_characters, raises


def setup_page(*args, **kwargs):
    return pages.text(pages.setup_page(*args, **kwargs))


def joining_page(*args, **kwargs):
    return pages.text(pages.joining_page(*args, **kwargs))


def joined_page(*args, **kwargs):
    return pages.text(pages.joined_page(*args, **kwargs))


def error_page(*args, **kwargs):
    return pages.text(pages.error_page(*args, **kwargs))


EVIL = '<script>alert("x")</script>&\''  # 32 bytes: a valid SSID


def _worst_networks():
    # the most bytes each entry can cost: 32 characters that all need escaping
    return [('"' * 31 + "%d" % (i % 10), -40 - i, i % 2 == 0) for i in range(20)]


def test_setup_page_escapes_everything_typed_or_scanned():
    page = setup_page([(EVIL, -50, False)], EVIL, EVIL, EVIL, EVIL)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    # list entry, ssid field, server field, note, setup network label, footer
    assert page.count("&lt;script&gt;") == 6


def test_setup_page_has_the_form_and_no_javascript():
    page = setup_page([("Home", -50, True)], "Home")
    for part in ('action="/join"', 'name="ssid"', 'name="password"', 'name="server"', "/scan"):
        assert part in page, part
    lowered = page.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    assert not re.search("<[^>]* on[a-z]+=", lowered), "no event handler attributes"
    assert 'href="/?ssid=Home"' in page
    assert 'value="Home"' in page and "autofocus" in page


def test_pages_stay_under_20_kb_even_at_worst():
    page = setup_page(_worst_networks(), EVIL, "h" * 64, "x" * 200, "Sysboy-ABCD")
    assert len(page.encode("utf-8")) < 20 * 1024, len(page)
    for other in (
        joining_page(EVIL),
        joined_page("x" * 200),
        error_page(400, "x" * 200),
    ):
        assert len(other.encode("utf-8")) < 20 * 1024


def test_the_notice_says_why_or_what_failed():
    assert '<p class="note info">Pick a network.</p>' in setup_page([], notice="Pick a network.")
    page = setup_page([], notice="Wrong password.", notice_kind="bad")
    assert '<p class="note bad">Wrong password.</p>' in page
    assert "note" not in setup_page([]).split("<main>")[1]


def test_the_form_carries_the_page_token_and_an_open_network_is_named():
    page = setup_page([], token="0123abcd", open_ap=True)
    assert '<input type="hidden" name="token" value="0123abcd">' in page
    assert "This setup network is open" in page
    assert "This setup network is open" not in setup_page([], token="0123abcd")


def test_joining_page_refreshes_without_script():
    page = joining_page("Home")
    assert 'http-equiv="refresh"' in page and "url=/result" in page


def test_a_page_sent_in_small_pieces_is_the_whole_page_and_says_its_length():
    for page in (
        pages.setup_page(_worst_networks(), EVIL, "h" * 64, "x" * 200, "Sysboy-ABCD", "bad"),
        pages.setup_page([], open_ap=True),
        pages.joining_page(EVIL),
        pages.joined_page("Joined."),
        pages.error_page(503, "Busy."),
    ):
        whole = pages.text(page).encode("utf-8")
        small = b"".join(bytes(piece) for piece in pages.stream(page, 7))
        assert small == whole
        assert pages.size(page) == len(whole)
        assert whole.startswith(b"<!DOCTYPE html>") and whole.endswith(b"</html>")
        assert b"@" not in whole and b"#" not in whole.split(b"<style>")[0]


def test_form_check_accepts_good_settings():
    form = {"ssid": "Home", "password": "secret123", "server": " 192.168.1.20:47800 "}
    assert portalform.check_form(form) == {
        "ssid": "Home",
        "password": "secret123",
        "server": "192.168.1.20:47800",
    }
    assert portalform.check_form({"ssid": "Open"}) == {"ssid": "Open", "password": "", "server": ""}
    assert portalform.check_form({"ssid": "K", "password": "ab" * 32})["password"] == "ab" * 32
    assert portalform.check_form({"ssid": EVIL, "password": "12345678"})["ssid"] == EVIL
    # the setup network's own password changes only when one is given
    assert portalform.check_form({"ssid": "K", "ap_password": ""}).get("ap_password") is None
    form = {"ssid": "K", "ap_password": "new-pass"}
    assert portalform.check_form(form)["ap_password"] == "new-pass"


def test_form_check_refuses_in_words():
    for form in (
        {},
        {"ssid": ""},
        {"ssid": "x" * 33},
        {"ssid": "é" * 17},
        {"ssid": "a\nb"},
        {"ssid": "Home", "password": "short"},
        {"ssid": "Home", "password": "x" * 64},
        {"ssid": "Home", "password": "pass\tword"},
        {"ssid": "Home", "server": "pc:99999"},
        {"ssid": "Home", "server": "pc:port"},
        {"ssid": "Home", "server": "bad host:80"},
        {"ssid": "Home", "server": ":80"},
        {"ssid": "Home", "ap_password": "short"},
        {"ssid": "Home", "ap_password": "x" * 64},
    ):
        with raises(HTTPError) as info:
            portalform.check_form(form)
        assert info.value.status == 400 and info.value.message, form


def test_server_without_port_gets_the_default():
    assert portalform.check_server("meter-pc.local") == "meter-pc.local:47800"  # the PC app's port
    assert portalform.check_server("10.0.0.2:0080") == "10.0.0.2:80"


class FakeClock:
    """hal's ticks_ms/ticks_diff, moved by hand."""

    def __init__(self):
        self.now = 1000

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b


class CountingStation:
    def __init__(self):
        self.scans = 0
        self.fail = False

    def scan(self):
        self.scans += 1
        return None if self.fail else [("Net%d" % self.scans, -50, True)]


def test_scan_cache_scans_once_then_only_on_request():
    # each scan throws the setup network's phone off for 2-3 s: never by itself
    clock = FakeClock()
    station = CountingStation()
    cache = portal.ScanCache(station, clock)
    assert cache.get() == [("Net1", -50, True)]
    clock.now += 3_600_000
    assert cache.get() == [("Net1", -50, True)] and station.scans == 1
    # the rescan button scans at once, but not twice within a few seconds
    cache.rescan()
    assert station.scans == 2 and cache.get() == [("Net2", -50, True)]
    clock.now += 1_000
    cache.rescan()
    assert station.scans == 2
    clock.now += 5000  # portal.py: a new scan at most every 5 s
    cache.rescan()
    assert station.scans == 3 and cache.get() == [("Net3", -50, True)]
    # a failed scan keeps the last list
    station.fail = True
    clock.now += 5000  # portal.py: a new scan at most every 5 s
    cache.rescan()
    assert cache.get() == [("Net3", -50, True)] and station.scans == 4


def test_what_a_phone_sends_leaves_nothing_in_the_heap():
    # a client of the setup network may send any characters, in every field and header; a
    # check that stops at the first bad character still meets it, so each try starts anew
    def send(start):
        text = new_characters(start, 30)
        for i in range(0, 30, 3):
            new = text[i:]
            body = "ssid=%s&password=%s" % (url_quote(new), url_quote(new))
            for fields in (
                decode_form(body.encode()),
                {"ssid": new[:8] + "\n"},
                {"ssid": "Home", "password": new + "12345678"},
                {"ssid": "Home", "password": "ab" * 32 + new},
                {"ssid": "Home", "server": new + ":80"},
            ):
                try:
                    portalform.check_form(fields)
                except HTTPError:
                    pass
            head = "%sT / HTTP/1.1\r\nContent-Length: %s\r\n" % (new, new)
            for request in (head, head.replace(new + "T", "POST", 1)):
                try:
                    parse_head(request.encode()).body_length()
                except HTTPError:
                    pass

    grown = heap_kept(send)
    assert grown < 1024, "%d bytes stayed in the heap after 5 rounds" % grown
