"""The setup portal's pages: small server-rendered HTML, no JavaScript, everything escaped."""

from httpparse import html_escape, url_quote

_STYLE = (  # bytes: written out as it is, never copied
    b"*{box-sizing:border-box}"
    b"body{margin:0;background:#f3f1ec;color:#222;font:17px/1.45 system-ui,-apple-system,"
    b"'Segoe UI',Roboto,sans-serif}"
    b"main{max-width:30rem;margin:0 auto;padding:1rem}"
    b"h1{font-size:1.35rem;margin:.4rem 0 .8rem}"
    b"h2{font-size:1rem;margin:1.2rem 0 .5rem;color:#555;text-transform:uppercase;"
    b"letter-spacing:.04em}"
    b".card{background:#fff;border-radius:12px;padding:1rem;box-shadow:0 1px 3px #0002}"
    b".nets{list-style:none;margin:0;padding:0}"
    b".nets a{display:flex;justify-content:space-between;align-items:center;padding:.7rem .2rem;"
    b"border-bottom:1px solid #eee;color:#222;text-decoration:none;overflow-wrap:anywhere}"
    b".nets li:last-child a{border:0}"
    b".card>label:first-child,.card>p:first-child{margin-top:0}.card>p:last-child{margin-bottom:0}"
    b"details{margin-top:1rem}summary{color:#555;font-size:.9rem}"
    b".sig{color:#888;font-size:.85rem;white-space:nowrap;margin-left:.6rem}"
    b"label{display:block;font-weight:600;margin:.8rem 0 .25rem}"
    b"input{width:100%;font:inherit;padding:.65rem;border:1px solid #bbb;border-radius:8px;"
    b"background:#fff}"
    b"button{font:inherit;font-weight:600;border:0;border-radius:8px;padding:.75rem 1rem;"
    b"background:#1f6f5c;color:#fff;width:100%;margin-top:1.1rem}"
    b"button.alt{background:#e4e1da;color:#222;margin-top:.6rem}"
    b".hint{font-size:.85rem;color:#666;margin:.25rem 0 0}"
    b".note{border-radius:8px;padding:.7rem .8rem;margin:0 0 1rem}"
    b".bad{background:#fbe3e0;color:#7a1d12}"
    b".good{background:#ddf2e7;color:#145c3a}"
    b".wait{background:#fff4d6;color:#6b5200}"
    b".info{background:#e1ecf7;color:#173f66}"
    b"footer{font-size:.8rem;color:#888;margin:1.2rem 0;text-align:center}"
)


def _page(title, body, refresh_s=0):
    """The whole page as a list of byte pieces, written to the socket one by one: one string
    built of the whole page would cost the heap many times the page's size."""
    out = [
        b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        b'<meta name="viewport" content="width=device-width,initial-scale=1">'
    ]
    if refresh_s:
        out.append(b'<meta http-equiv="refresh" content="%d;url=/result">' % refresh_s)
    out.append(b"<title>")
    out.append(_text(title))
    out.append(b"</title><style>")
    out.append(_STYLE)
    out.append(b"</style></head><body><main><h1>Sysboy2000 setup</h1>")
    out.extend(body)
    out.append(b"</main></body></html>")
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
        out.append(b'<p class="hint">No networks found yet. Type the name below or scan again.</p>')
        return
    out.append(b'<ul class="nets">')
    for name, rssi, secured in networks:
        out.append(b'<li><a href="/?ssid=' + url_quote(name).encode("utf-8") + b'"><span>')
        out.append(_text(name))
        out.append(b'</span><span class="sig">' + (b"" if secured else b"open &middot; "))
        out.append(_bars(rssi) + b"</span></a></li>")
    out.append(b"</ul>")


def _form(out, ssid, server, device, token):
    out.append(b'<form class="card" method="post" action="/join">')
    out.append(b'<input type="hidden" name="token" value="' + _text(token) + b'">')
    out.append(
        b'<label for="ssid">Network name</label>'
        b'<input id="ssid" name="ssid" maxlength="32" required autocapitalize="none" '
        b'autocomplete="off" spellcheck="false" value="'
    )
    out.append(_text(ssid))
    out.append(
        b'"><label for="password">Password</label>'
        b'<input id="password" name="password" type="password" maxlength="64" '
        b'autocomplete="off"' + (b" autofocus" if ssid else b"") + b">"
        b'<p class="hint">Leave empty for an open network.</p>'
        b'<label for="server">PC address (optional)</label>'
        b'<input id="server" name="server" maxlength="64" inputmode="url" autocapitalize="none" '
        b'spellcheck="false" placeholder="192.168.1.20:47800" value="'
    )
    out.append(_text(server))
    out.append(
        b'"><p class="hint">Only if your network hides the PC from the meter '
        b"(the meter finds it by itself on most home networks).</p>"
        b"<details><summary>Setup network password</summary>"
        b'<label for="ap_password">New password for '
    )
    out.append(_text(device or "it"))
    out.append(
        b'</label><input id="ap_password" name="ap_password" type="password" maxlength="63" '
        b'autocomplete="new-password">'
        b'<p class="hint">The network you are on now. Leave empty to keep it.</p></details>'
        b"<button>Save and join</button></form>"
    )


OPEN_NETWORK = (
    "This setup network is open: anyone nearby can join it and see this page. Set the meter "
    "up over USB with `sysboy firmware deploy --wifi` and it gets a password of its own."
)


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
        body.append(_note(b"wait", OPEN_NETWORK))
    body.append(b"<h2>Networks nearby</h2><div class=card>")
    _networks(body, networks)
    if networks:
        body.append(b'<p class="hint">Tap yours to fill in its name.</p>')
    body.append(
        b'<form method="get" action="/scan"><button class="alt">Scan again</button></form></div>'
        b"<h2>Join</h2>"
    )
    _form(body, ssid, server, device, token)
    body.append(b"<footer>Meter " + _text(device))
    body.append(b" &middot; this page works without internet</footer>")
    return _page("Sysboy2000 setup", body)


def joining_page(ssid, device="", refresh_s=3):
    """Shown before and while the meter joins: what happens next, since the phone may lose
    the setup network meanwhile; the browser reloads it by itself."""
    body = [
        _note(b"wait", 'Joining "%s"... this can take up to 30 seconds.' % ssid),
        b'<div class="card"><p>The setup network may drop for a few seconds while the meter '
        b"joins; your phone rejoins it by itself.</p>"
        b"<p>If the join works, the setup network closes and the meter goes on to find the PC. "
        b'If it does not, the meter keeps the setup network "',
        _text(device or "Sysboy"),
        b'" open: join it again and this page says what went wrong.</p></div>'
        b'<p class="hint">This page updates by itself.</p>',
    ]
    return _page("Joining...", body, refresh_s)


def joined_page(message):
    """The join worked: say so and what happens next."""
    body = [
        _note(b"good", message),
        b'<div class="card"><p>Setup is done and this setup network closes now.</p>'
        b"<p>Reconnect your phone to your usual Wi-Fi. The meter finds the PC by itself; "
        b"start the Sysboy2000 app there if it is not running.</p></div>",
    ]
    return _page("Joined", body)


def error_page(status, message):
    """A refused request, in words, with a way back."""
    body = [_note(b"bad", message), b'<p><a href="/">Back to the setup page</a></p>']
    return _page("Error %d" % status, body)


def text(page):
    """A page's pieces as one string (for tests and logs, not for sending)."""
    return b"".join(page).decode("utf-8")
