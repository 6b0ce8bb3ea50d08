"""The setup portal's pages: small server-rendered HTML, no JavaScript, everything escaped.

A page is a list of pieces: bytes filled in for this page, and ints that stand for fixed
text in pages.txt (beside this module), which `stream` reads from the file a little at a
time: that text is never all in the heap, and never copied into a page."""

from httpparse import html_escape, url_quote
from micropython import const


def _file():
    # beside this module: the flash root, or the update's folder it was loaded from
    here = __file__.replace("\\", "/").rpartition("/")[0]
    return here + "/pages.txt" if here else "pages.txt"


def _index(path):
    """Each piece's place in the file, as offset << 16 | length, in the file's order."""
    at = []
    offset = 0
    start = end = None  # of the piece being read; None in the notes above the first
    with open(path, "rb") as f:
        for line in f:
            if line[:1] == b"@":
                if start is not None:
                    at.append(start << 16 | end - start)
                start = end = offset + len(line)
            elif start is not None:
                end = offset + len(line.rstrip(b"\r\n"))  # without the last line's end
            offset += len(line)
    if start is not None:
        at.append(start << 16 | end - start)
    return at


# the pieces, in pages.txt's order (a test holds the two to the same names): numbers, not
# names, so that the index is a short list of ints
_TOP = const(0)
_STYLE = const(1)
_MAIN = const(2)
_END = const(3)
_OPEN_NETWORK = const(4)
_NETWORKS = const(5)
_NO_NETWORKS = const(6)
_TAP = const(7)
_SCAN = const(8)
_FORM = const(9)
_SSID = const(10)
_PASSWORD = const(11)
_SERVER = const(12)
_AP_PASSWORD = const(13)
_FORM_END = const(14)
_FOOTER = const(15)
_FOOTER_END = const(16)
_JOINING = const(17)
_JOINING_END = const(18)
_JOINED = const(19)
_BACK = const(20)


# read once when the setup code loads, while the heap is still in one piece
_AT = _index(_file())


def size(page):
    """The bytes `page` sends."""
    return sum(piece & 0xFFFF if isinstance(piece, int) else len(piece) for piece in page)


def stream(page, most=256):
    """`page`'s bytes a piece at a time; a page given as bytes comes whole. Its fixed text
    comes through one buffer of `most` bytes: each such piece holds until the next is asked
    for (a socket's write has sent or copied it by then)."""
    if not isinstance(page, list):
        yield page
        return
    view = memoryview(bytearray(most))
    with open(_file(), "rb") as f:
        for piece in page:
            if not isinstance(piece, int):
                yield piece
                continue
            f.seek(piece >> 16)
            left = piece & 0xFFFF
            while left:
                got = f.readinto(view[: min(left, most)])
                if not got:
                    raise OSError("pages.txt is shorter than when it was read")
                left -= got
                yield view[:got]


def _page(title, body, refresh_s=0):
    """The whole page, its pieces sent one by one: one string built of the whole page
    would cost the heap many times the page's size."""
    out = [_AT[_TOP], _text(title), _AT[_STYLE]]
    if refresh_s:
        out.append(b'<meta http-equiv="refresh" content="%d;url=/result">' % refresh_s)
    out.append(_AT[_MAIN])
    out.extend(body)
    out.append(_AT[_END])
    return out


def _text(text):
    """`text` escaped for HTML, as bytes."""
    return html_escape(text).encode("utf-8")


def _note(kind, text):
    return b'<p class="note ' + kind + b'">' + _text(text) + b"</p>"


def _bars(rssi):
    """Signal strength as 1..4 bars in text (no images: the page must stay small)."""
    level = 4 if rssi >= -55 else 3 if rssi >= -67 else 2 if rssi >= -78 else 1
    return ("\u25ae" * level + "\u25af" * (4 - level)).encode("utf-8")


def _networks(out, networks):
    if not networks:
        out.append(_AT[_NO_NETWORKS])
        return
    out.append(b'<ul class="nets">')
    for name, rssi, secured in networks:
        out.append(b'<li><a href="/?ssid=' + url_quote(name).encode("utf-8") + b'"><span>')
        out.append(_text(name))
        out.append(b'</span><span class="sig">' + (b"" if secured else b"open &middot; "))
        out.append(_bars(rssi) + b"</span></a></li>")
    out.append(b"</ul>")
    out.append(_AT[_TAP])


def _form(out, ssid, server, device, token):
    out.append(_AT[_FORM])
    out.append(_text(token))
    out.append(_AT[_SSID])
    out.append(_text(ssid))
    out.append(_AT[_PASSWORD])
    if ssid:
        out.append(b" autofocus")
    out.append(_AT[_SERVER])
    out.append(_text(server))
    out.append(_AT[_AP_PASSWORD])
    out.append(b" " + _text(device or "it"))
    out.append(_AT[_FORM_END])


def setup_page(
    networks, ssid="", server="", notice="", device="", notice_kind="info", token="", open_ap=False
):
    """The main page: networks nearby, rescan, and the form; `notice` says why, or what failed
    (`notice_kind` "bad"); `token` goes into the form, which must send it back; `open_ap`:
    the setup network has no password, and the page says so."""
    body = []
    if notice:
        body.append(_note(notice_kind.encode(), notice))
    if open_ap:
        body.append(_AT[_OPEN_NETWORK])
    body.append(_AT[_NETWORKS])
    _networks(body, networks)
    body.append(_AT[_SCAN])
    _form(body, ssid, server, device, token)
    body.append(_AT[_FOOTER])
    body.append(b" " + _text(device) + b" ")
    body.append(_AT[_FOOTER_END])
    return _page("Sysboy2000 setup", body)


def joining_page(ssid, device="", refresh_s=3):
    """Shown before and while the meter joins: what happens next, since the phone may lose
    the setup network meanwhile; the browser reloads it by itself."""
    body = [
        _note(b"wait", 'Joining "%s"... this can take up to 30 seconds.' % ssid),
        _AT[_JOINING],
        _text(device or "Sysboy"),
        _AT[_JOINING_END],
    ]
    return _page("Joining...", body, refresh_s)


def joined_page(message):
    """The join worked: say so and what happens next."""
    return _page("Joined", [_note(b"good", message), _AT[_JOINED]])


def error_page(status, message):
    """A refused request, in words, with a way back."""
    return _page("Error %d" % status, [_note(b"bad", message), _AT[_BACK]])


def text(page):
    """A page's pieces as one string (for tests and logs, not for sending)."""
    return b"".join(bytes(piece) for piece in stream(page)).decode("utf-8")
