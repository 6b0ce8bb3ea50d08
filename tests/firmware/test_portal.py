"""The setup portal under the real MicroPython unix port: HTTP limits, probes, escaping, DNS."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from tests.conftest import scaled
from tests.firmware.portal_sim import (
    Portal,
    exchange,
    firmware_constant,
    get,
    page_token,
    post_form,
)

AP_IP = "192.168.4.1"  # the config's default ap_ip: what the DNS server answers
PROBES = [
    ("/generate_204", "connectivitycheck.gstatic.com"),
    ("/gen_204", "clients3.google.com"),
    ("/hotspot-detect.html", "captive.apple.com"),
    ("/library/test/success.html", "www.apple.com"),
    ("/connecttest.txt", "www.msftconnecttest.com"),
    ("/ncsi.txt", "www.msftncsi.com"),
    ("/redirect", "www.msftconnecttest.com"),
    ("/canonical.html", "detectportal.firefox.com"),
    ("/success.txt", "detectportal.firefox.com"),
    ("/", "example.com"),
]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    with Portal(tmp_path_factory.mktemp("portal")) as running:
        yield running


def test_the_pages_number_their_pieces_in_the_order_of_their_text_file() -> None:
    firmware = Path(__file__).resolve().parents[2] / "firmware_micropython"
    text = (firmware / "pages.txt").read_text()
    pieces = [line[1:].strip() for line in text.splitlines() if line.startswith("@")]
    numbered = re.findall(r"^_(\w+) = const\((\d+)\)$", (firmware / "pages.py").read_text(), re.M)
    assert [(name.upper(), str(i)) for i, name in enumerate(pieces)] == numbered


def test_the_page_is_small_server_rendered_html(portal: Portal) -> None:
    reply = get(portal.http_port, "/")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["cache-control"] == "no-store"
    assert len(reply.body) < 20 * 1024
    page = reply.text
    assert "<script" not in page.lower()
    for part in ('action="/join"', 'name="ssid"', 'name="password"', 'name="server"'):
        assert part in page
    assert page.count('<li><a href="/?ssid=') >= 1, "the scanned networks are listed"
    assert "Sysboy-" in page
    head = exchange(
        portal.http_port, f"HEAD / HTTP/1.1\r\nHost: 127.0.0.1:{portal.http_port}\r\n\r\n".encode()
    )
    assert head.status == 200 and head.body == b""  # fmt: skip


@pytest.mark.parametrize(("path", "host"), PROBES)
def test_os_probes_are_sent_to_the_portal(portal: Portal, path: str, host: str) -> None:
    reply = get(portal.http_port, path, host)
    assert reply.status == 302
    assert reply.headers["location"] == portal.home


def test_any_other_path_is_sent_home_too(portal: Portal) -> None:
    for path in ("/nothing-here", "/generate_204", "/a%20b/c?x=1"):
        reply = get(portal.http_port, path)
        assert (reply.status, reply.headers["location"]) == (302, portal.home), path


@pytest.mark.parametrize("path", ["/favicon.ico", "/wpad.dat"])
def test_favicon_and_wpad_are_not_found(portal: Portal, path: str) -> None:
    assert get(portal.http_port, path).status == 404
    assert get(portal.http_port, path, "wpad").status == 404


def test_an_ssid_in_the_address_is_escaped(portal: Portal) -> None:
    reply = get(portal.http_port, "/?ssid=%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E")
    assert reply.status == 200
    assert "<script" not in reply.text
    assert 'value="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"' in reply.text


def test_a_bad_form_is_refused_with_the_form_again_escaped(portal: Portal) -> None:
    reply = post_form(portal.http_port, b"ssid=%3Cscript%3E&password=short&server=")
    assert reply.status == 400
    assert "8 to 63 characters" in reply.text
    assert 'value="&lt;script&gt;"' in reply.text and "<script" not in reply.text
    assert not (portal.device_dir / "sysboy.json").exists() or not portal.saved().get("ssid")


def test_broken_percent_encoding_is_400(portal: Portal) -> None:
    for body in (b"ssid=%zz&password=12345678", b"ssid=Home%&password=12345678", b"ssid=%C3"):
        reply = post_form(portal.http_port, body)
        assert reply.status == 400, body
        assert "percent-encoding" in reply.text or "UTF-8" in reply.text
    assert get(portal.http_port, "/?ssid=%E0%A4").status == 400
    assert get(portal.http_port, "/%zz").status == 400


@pytest.mark.parametrize(
    "sequence",
    [b"%C0%AF", b"%E0%80%AF", b"%ED%A0%80", b"%F4%90%80%80", b"\xc0\xaf", b"\xed\xa0\x80"],
    ids=["overlong", "overlong3", "surrogate", "high", "raw-overlong", "raw-surrogate"],
)
def test_form_fields_that_are_not_utf8_are_refused_in_words(
    portal: Portal, sequence: bytes
) -> None:
    # MicroPython's own str() takes these; the portal must not save them as a network name
    reply = post_form(portal.http_port, b"ssid=Home" + sequence + b"&password=12345678")
    assert reply.status == 400
    assert "The form data is not valid UTF-8 text." in reply.text
    assert not (portal.device_dir / "sysboy.json").exists() or not portal.saved().get("ssid")


def test_an_oversized_body_is_413(portal: Portal) -> None:
    body = b"ssid=Home&password=" + b"x" * 5000
    reply = post_form(portal.http_port, body)
    assert reply.status == 413
    assert "too large" in reply.text
    # a lying Content-Length is refused before the body is read
    reply = post_form(portal.http_port, b"ssid=Home", Content_Length="1025")
    assert reply.status == 413
    assert get(portal.http_port, "/").status == 200, "the portal keeps serving"


def test_oversized_headers_are_431(portal: Portal) -> None:
    big = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{portal.http_port}\r\nCookie: {'a' * 3000}\r\n\r\n"
    reply = exchange(portal.http_port, big.encode())
    assert reply.status == 431
    assert "too large" in reply.text
    many = "GET / HTTP/1.1\r\n" + "".join(f"X-{i}: y\r\n" for i in range(60)) + "\r\n"
    assert exchange(portal.http_port, many.encode()).status == 431


def test_other_bad_requests_get_a_clear_4xx(portal: Portal) -> None:
    port = portal.http_port
    assert exchange(port, b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n").status == 405
    assert exchange(port, b"GET / HTTP/9.9\r\n\r\n").status == 400
    assert exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").status == 400
    head = f"POST /join HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    assert exchange(port, head).status == 411
    chunked = post_form(port, b"", Transfer_Encoding="chunked")
    assert chunked.status == 501
    assert post_form(port, b'{"ssid": "x"}', Content_Type="application/json").status == 415
    assert post_form(port, b"ssid=Home&password=12345678", path="/elsewhere").status == 405


def test_slow_and_unfinished_requests_time_out(portal: Portal) -> None:
    read_timeout = firmware_constant("portal.py", "READ_TIMEOUT_S")
    request_limit = firmware_constant("portal.py", "REQUEST_S")
    replies: dict[str, bytes] = {}

    def unfinished() -> None:
        with socket.create_connection(("127.0.0.1", portal.http_port)) as s:
            s.settimeout(scaled(read_timeout + 10))
            s.sendall(b"GET / HTTP/1.1\r\nHost: ")
            replies["unfinished"] = s.recv(4096)

    def dribbling() -> None:
        with socket.create_connection(("127.0.0.1", portal.http_port)) as s:
            s.settimeout(scaled(request_limit + 10))
            for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n":
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    break  # the server already answered and closed
                time.sleep(read_timeout / 4)
            replies["dribbling"] = s.recv(4096)

    threads = [threading.Thread(target=f) for f in (unfinished, dribbling)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(request_limit + 20))
    for name in ("unfinished", "dribbling"):
        assert replies.get(name, b"").startswith(b"HTTP/1.1 408 "), (name, replies)
    assert get(portal.http_port, "/").status == 200, "the portal keeps serving"


def test_connections_beyond_the_limit_are_turned_away(portal: Portal) -> None:
    limit = firmware_constant("portal.py", "MAX_CLIENTS")
    idle = [socket.create_connection(("127.0.0.1", portal.http_port)) for _ in range(limit)]
    try:
        time.sleep(0.2)  # let the server accept them all
        reply = get(portal.http_port, "/")
        assert reply.status == 503
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + scaled(10)
    while get(portal.http_port, "/").status != 200:
        assert time.monotonic() < deadline, "slots were not given back"
        time.sleep(0.1)


def test_one_address_cannot_take_every_slot(portal: Portal) -> None:
    per_client = firmware_constant("portal.py", "PER_CLIENT")
    assert per_client < firmware_constant("portal.py", "MAX_CLIENTS")
    idle = [socket.create_connection(("127.0.0.1", portal.http_port)) for _ in range(per_client)]
    try:
        time.sleep(0.2)  # let the server accept them all
        assert get(portal.http_port, "/").status == 503  # this address has had its share
        # another phone on the setup network is still served
        with socket.create_connection(
            ("127.0.0.1", portal.http_port), timeout=scaled(10), source_address=("127.0.0.2", 0)
        ) as other:
            host = f"127.0.0.1:{portal.http_port}"
            other.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            reply = b""
            while chunk := other.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    finally:
        for s in idle:
            s.close()


def _resolver(portal: Portal) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = portal.dns_port
    resolver.lifetime = scaled(5)
    return resolver


def test_dns_answers_every_name_with_the_ap_address(portal: Portal) -> None:
    resolver = _resolver(portal)
    for name in ("connectivitycheck.gstatic.com", "captive.apple.com", "example.com"):
        answer = resolver.resolve(name, "A")
        assert [r.address for r in answer] == [AP_IP]
        assert answer.rrset is not None and answer.rrset.ttl == 60


def test_dns_answers_aaaa_with_an_empty_noerror(portal: Portal) -> None:
    query = dns.message.make_query("captive.apple.com", dns.rdatatype.AAAA)
    reply = dns.query.udp(query, "127.0.0.1", port=portal.dns_port, timeout=scaled(5))
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.QR
    assert reply.answer == []
    with pytest.raises(dns.resolver.NoAnswer):
        _resolver(portal).resolve("captive.apple.com", "AAAA")


def test_dns_drops_malformed_packets_and_keeps_serving(portal: Portal) -> None:
    good = dns.message.make_query("example.com", dns.rdatatype.A)
    wire = good.to_wire()
    answer_packet = bytearray(wire)
    answer_packet[2] |= 0x80  # QR set: a response, not a query
    bad_packets = [
        b"",
        b"\x00",
        b"\xff" * 11,
        wire[:-3],  # truncated question
        bytes(answer_packet),
        wire[:12] + b"\xc0\x0c\x00\x01\x00\x01",  # a name pointing at itself
        bytes(range(256)) * 2,
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(scaled(0.5))
        for packet in bad_packets:
            s.sendto(packet, ("127.0.0.1", portal.dns_port))
            with pytest.raises(TimeoutError):
                s.recvfrom(2048)
        s.settimeout(scaled(5))
        s.sendto(wire, ("127.0.0.1", portal.dns_port))
        data, _ = s.recvfrom(2048)
    reply = dns.message.from_wire(data)
    assert reply.id == good.id
    assert [r.address for r in reply.answer[0]] == [AP_IP]


def test_a_form_with_markup_is_saved_joined_and_shown_escaped(tmp_path: Path) -> None:
    ssid = '<script>alert("x")</script>'
    with Portal(tmp_path) as portal:
        body = b"ssid=%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E&password=hunter2hunter2&server="
        reply = post_form(portal.http_port, body)
        assert (reply.status, reply.headers["location"]) == (303, "/result")
        saved = portal.saved()
        assert (saved["ssid"], saved["password"], saved["server"]) == (ssid, "hunter2hunter2", "")
        deadline = time.monotonic() + scaled(40)
        while "Joined" not in (page := get(portal.http_port, "/result").text):
            assert "Joining" in page, page
            assert time.monotonic() < deadline, "the join never finished"
            time.sleep(0.2)
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
        assert "<script" not in page
        # the portal closes once the result was shown
        deadline = time.monotonic() + scaled(10)
        while portal.serving():
            assert time.monotonic() < deadline, "the portal stayed open after the join"
            time.sleep(0.1)


FOREIGN_ORIGINS = [
    "http://evil.example",
    "null",  # a sandboxed frame or a local file
    "https://127.0.0.1",
    "http://192.168.4.1.evil.example",
]


def test_a_form_from_any_other_page_is_refused(portal: Portal) -> None:
    port = portal.http_port
    form = b"ssid=Evil+Net&password=12345678&server=10.6.6.6%3A47800"
    # a foreign Host: DNS rebinding (this portal's DNS answers every name with its address)
    refused = post_form(port, form, Host="evil.example")
    assert refused.status == 403
    assert "The setup form can only be sent from the meter" in refused.text
    # a foreign Origin: another site's page, open in the phone, posting across
    for origin in FOREIGN_ORIGINS:
        refused = post_form(port, form, Origin=origin)
        assert refused.status == 403, origin
        assert "can only be sent from the meter" in refused.text
    # without this page's token, or with another: a page that never saw the form
    for token in (None, "", "0" * 32):
        refused = post_form(port, form, token=token)
        assert refused.status == 403, token
        assert "The page was out of date" in refused.text
        assert 'name="token" value="' in refused.text  # a fresh form to send again
    assert not (portal.device_dir / "sysboy.json").exists() or not portal.saved().get("ssid")


def test_the_portals_own_page_is_taken_once_per_token(tmp_path: Path) -> None:
    with Portal(tmp_path) as portal:
        port = portal.http_port
        token = page_token(port)
        own = f"http://127.0.0.1:{port}"
        form = b"ssid=Home+Net&password=hunter2hunter2&server="
        taken = post_form(port, form, token=token, Origin=own)
        assert (taken.status, taken.headers["location"]) == (303, "/result")
        assert portal.saved()["ssid"] == "Home Net"
        again = post_form(port, b"ssid=Other&password=hunter2hunter2&server=", token=token)
        assert again.status == 403, "a spent token is not taken twice"
        assert portal.saved()["ssid"] == "Home Net"


def test_a_meter_never_set_up_over_usb_says_its_setup_network_is_open(tmp_path: Path) -> None:
    with Portal(tmp_path / "new") as portal:
        assert "This setup network is open" in get(portal.http_port, "/").text
        assert "setup network Sysboy-" in portal.output() and ", open" in portal.output()
    deployed = {"version": 1, "ap_password": "abcd-efgh-jkmn", "pc": "ab12cd34"}
    with Portal(tmp_path / "deployed", settings=deployed) as portal:
        assert "This setup network is open" not in get(portal.http_port, "/").text
        assert ", WPA2" in portal.output()


def test_an_idle_portal_restarts_the_device(tmp_path: Path) -> None:
    with Portal(tmp_path, SYSBOY_PORTAL_IDLE_S="2") as portal:
        try:
            portal.proc.wait(timeout=scaled(30))
        except Exception:
            pytest.fail("the idle portal never restarted:\n" + portal.output())
        assert "idle" in portal.output()


def test_visits_cannot_keep_the_portal_open_past_its_cap(tmp_path: Path) -> None:
    # every request used to reset the idle timer, so the portal could be kept open forever
    with Portal(tmp_path, SYSBOY_PORTAL_IDLE_S="600", SYSBOY_PORTAL_MAX_S="4") as portal:
        served = 0
        deadline = time.monotonic() + scaled(30)
        while portal.proc.poll() is None:
            assert time.monotonic() < deadline, "the portal stayed open:\n" + portal.output()
            with contextlib.suppress(OSError, AssertionError):  # it may be closing
                served += get(portal.http_port, "/").status == 200
            time.sleep(0.2)
        assert served >= 5, portal.output()
        assert "portal open for 4 s: restarting" in portal.output()


def test_scanned_networks_are_listed_once_strongest_first(portal: Portal) -> None:
    page = get(portal.http_port, "/").text
    entries = re.findall(r'<li><a href="/\?ssid=[^"]*"><span>([^<]*)</span>.*?</a></li>', page)
    assert entries, page
    assert len(entries) == len(set(entries)), entries
    bars = [m.count("\u25ae") for m in re.findall(r'<span class="sig">([^<]*)</span>', page)]
    assert bars == sorted(bars, reverse=True), bars
    assert get(portal.http_port, "/scan").status == 303


@pytest.mark.parametrize(
    ("failure", "words"),
    [("wrong password", "was not accepted"), ("not found", "No network named")],
)
def test_a_failed_join_is_told_in_words_and_the_portal_stays(
    tmp_path: Path, failure: str, words: str
) -> None:
    with Portal(tmp_path, SYSBOY_SIM_WIFI=failure) as portal:
        body = b"ssid=Home+Net&password=not-the-one&server=&ap_password=my-own-pass"
        reply = post_form(portal.http_port, body)
        assert reply.status == 303
        deadline = time.monotonic() + scaled(40)
        while "Joining" in (page := get(portal.http_port, "/result").text):
            assert time.monotonic() < deadline, "the join never finished"
            time.sleep(0.2)
        assert words in page and "Home Net" in page
        assert 'value="Home Net"' in page, "the form comes back with the name filled in"
        saved = portal.saved()
        assert (saved["ssid"], saved["password"]) == ("Home Net", "not-the-one")
        assert saved["ap_password"] == "my-own-pass"
        assert portal.serving() and get(portal.http_port, "/").status == 200


def test_settings_that_cannot_be_saved_are_a_clear_error(tmp_path: Path) -> None:
    with Portal(tmp_path) as portal:
        # the flash refuses the write: the temp file's name is taken by a folder
        blocker = portal.device_dir / "sysboy.json.tmp"
        blocker.mkdir()
        (blocker / "x").write_text("x")
        reply = post_form(portal.http_port, b"ssid=Home&password=12345678")
        assert reply.status == 500
        assert "could not save the settings" in reply.text
        assert get(portal.http_port, "/").status == 200, "the portal keeps serving"
        assert get(portal.http_port, "/result").headers.get("location") == "/"
