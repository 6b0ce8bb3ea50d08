"""Request parsing with limits, strict form decoding and escaping (both runtimes)."""

import httpparse
from httpparse import HTTPError, decode_form, html_escape, parse_head, percent_decode, url_quote
from support import raises


def _status(func, *args):
    with raises(HTTPError) as info:
        func(*args)
    assert info.value.message, "an error must say why in words"
    return info.value.status


def test_request_line_headers_and_query():
    req = parse_head(
        b"GET /a%20b?ssid=%3Cscript%3E&x=1+2 HTTP/1.1\r\nHost: 192.168.4.1\r\nOrigin:  z \r\n"
        b"User-Agent: Mozilla/5.0 (a long one)\r\n\r\n"
    )
    assert req.method == "GET"
    assert req.path == "/a b"
    assert req.query == {"ssid": "<script>", "x": "1 2"}
    assert req.header("host") == "192.168.4.1"
    assert req.header("origin") == "z"
    # only the headers the portal reads are kept: six waiting requests hold less heap
    assert req.header("user-agent", "-") == "-"
    assert req.header("missing", "-") == "-"
    assert req.body_length() == 0


def test_absolute_target_keeps_the_path():
    req = parse_head(b"GET http://captive.apple.com/hotspot-detect.html HTTP/1.0\r\n\r\n")
    assert req.path == "/hotspot-detect.html"


def test_malformed_request_lines_are_400():
    for head in (
        b"\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET nopath HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\n\r\n",
    ):
        assert _status(parse_head, head) == 400, head


def test_header_limits_are_431():
    big = b"GET / HTTP/1.1\r\nX: " + b"a" * httpparse.MAX_HEAD + b"\r\n\r\n"
    assert _status(parse_head, big) == 431
    many = b"GET / HTTP/1.1\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(40)) + b"\r\n"
    assert _status(parse_head, many) == 431


def test_body_length_limits():
    def length(headers):
        return parse_head(b"POST /join HTTP/1.1\r\n" + headers + b"\r\n").body_length()

    assert length(b"Content-Length: 1024\r\n") == 1024
    assert _status(length, b"Content-Length: 1025\r\n") == 413
    assert _status(length, b"Content-Length: 99999999999999999999\r\n") == 400
    assert _status(length, b"Content-Length: -1\r\n") == 400
    assert _status(length, b"Content-Length: 1e3\r\n") == 400
    assert _status(length, b"") == 411
    assert _status(length, b"Transfer-Encoding: chunked\r\n") == 501


def test_head_end_finds_the_blank_line():
    assert httpparse.head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody") == 24
    assert httpparse.head_end(b"GET / HTTP/1.1\n\nbody") == 16
    assert httpparse.head_end(b"GET / HTTP/1.1\r\nA: b\r\n") == -1


def _outcome(head, lines=0, size=0):
    end = httpparse.head_end(head)
    if end < 0:
        return "open", len(head) + size
    try:
        req = parse_head(head[:end], lines, size)
    except HTTPError as exc:
        return exc.status, exc.message
    return req.method, req.path, req.query, req.headers, head[end:]


def test_dropping_unread_headers_changes_nothing():
    # the portal drops the headers it never reads as a request comes in; what is left must
    # read as the whole does, wherever the head is cut, with any line ends
    ua = b"User-Agent: Mozilla/5.0 (Linux; Android 10; K)\r\n"
    heads = (
        b"GET /?ssid=a HTTP/1.1\r\nHost: h\r\n" + ua + b"Accept: */*\r\n\r\nrest",
        b"POST /join HTTP/1.1\r\n" + ua + b"Content-Length: 4\r\nHost: h\r\n\r\nab=c",
        b"GET / HTTP/1.1\r\n" + ua + b"X: y\n\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\n" + ua + b"\nX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + ua + b"\r\n" + ua + b"\r\n",
        b"\r\n" + ua + b"Host: h\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + ua + b"Bad Name: x\r\n" + ua + b"\r\n",
        b"GET / HTTP/2.0\r\n" + ua + b"\r\n",
        b"GET / HTTP/1.1\r\nA: \xff\r\n" + ua + b"\r\n",
        b"GET / HTTP/1.1\r\n" + ua * 33 + b"\r\n",
        b"GET / HTTP/1.1\r\n" + ua * 45 + b"\r\n",
    )
    for whole in heads:
        for cut in range(1, len(whole) + 1):
            head, lines, size = httpparse.drop_headers(whole[:cut])
            assert size == cut - len(head) and (lines > 0) == (size > 0), (whole, cut)
            assert _outcome(head, lines, size) == _outcome(whole[:cut]), (whole, cut)
    head, lines, size = httpparse.drop_headers(heads[0])
    assert (lines, head) == (2, b"GET /?ssid=a HTTP/1.1\r\nHost: h\r\n\r\nrest")


def test_form_decoding_is_strict():
    assert decode_form(b"ssid=My+Net&password=p%40ss%25w0rd&server=") == {
        "ssid": "My Net",
        "password": "p@ss%w0rd",
        "server": "",
    }
    assert decode_form("ssid=Caf%C3%A9") == {"ssid": "Café"}
    assert decode_form("a=1&a=2&&b") == {"a": "1", "b": ""}
    for bad in ("a=%", "a=%4", "a=%zz", "a=%4g", "a=%ff", "a=%C3"):
        assert _status(decode_form, bad) == 400, bad
    assert _status(decode_form, b"a=\xff") == 400
    assert _status(decode_form, "&".join("f%d=1" % i for i in range(40))) == 400


def test_percent_decode_keeps_plus_in_paths():
    assert percent_decode("/a+b%2Fc", False) == "/a+b/c"
    assert percent_decode("a+b") == "a b"


def test_html_escape_covers_markup_and_quotes():
    assert html_escape("<script>alert('x')</script>") == (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    )
    assert html_escape('a"b&c') == "a&quot;b&amp;c"
    assert html_escape(42) == "42"


def test_url_quote_round_trips_through_the_form_decoder():
    for text in ("Home", "my net & more", "Café/é?#%+", "<script>"):
        quoted = url_quote(text)
        assert all(c.isalpha() or c.isdigit() or c in "-._~%" for c in quoted), quoted
        assert decode_form("ssid=" + quoted) == {"ssid": text}


def test_response_closes_and_states_its_length():
    raw = httpparse.response(404, "gone", headers=(("X-A", "b"),))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 404 Not Found"
    assert b"Content-Length: 4" in lines
    assert b"Connection: close" in lines
    assert b"X-A: b" in lines
    assert body == b"gone"
    assert b"Content-Type" not in httpparse.response(302, b"")


def test_form_fields_that_are_not_utf8_are_refused_with_a_sentence():
    # overlong "/", a surrogate, U+110000: percent-encoded, and as raw bytes in the body
    for bad in ("%C0%AF", "%E0%80%AF", "%ED%A0%80", "%F4%90%80%80"):
        for form in ("ssid=Home" + bad, "ssid=Home&password=" + bad, bad + "=x"):
            with raises(HTTPError) as info:
                decode_form(form)
            assert info.value.status == 400
            assert info.value.message == "The form data is not valid UTF-8 text."
    for raw in (b"ssid=\xc0\xaf", b"ssid=\xed\xa0\x80", b"ssid=\xf4\x90\x80\x80"):
        with raises(HTTPError) as info:
            decode_form(raw)
        assert info.value.message == "The form data is not valid UTF-8 text."
    assert decode_form("ssid=Caf%C3%A9") == {"ssid": "Caf\u00e9"}
    assert decode_form("ssid=Caf\u00e9".encode()) == {"ssid": "Caf\u00e9"}
