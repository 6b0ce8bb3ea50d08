"""The setup portal's pages: small server-rendered HTML, no JavaScript, everything escaped."""

from httpparse import html_escape, url_quote

_STYLE = (
    "*{box-sizing:border-box}"
    "body{margin:0;background:#f3f1ec;color:#222;font:17px/1.45 system-ui,-apple-system,"
    "'Segoe UI',Roboto,sans-serif}"
    "main{max-width:30rem;margin:0 auto;padding:1rem}"
    "h1{font-size:1.35rem;margin:.4rem 0 .8rem}"
    "h2{font-size:1rem;margin:1.2rem 0 .5rem;color:#555;text-transform:uppercase;"
    "letter-spacing:.04em}"
    ".card{background:#fff;border-radius:12px;padding:1rem;box-shadow:0 1px 3px #0002}"
    ".nets{list-style:none;margin:0;padding:0}"
    ".nets a{display:flex;justify-content:space-between;align-items:center;padding:.7rem .2rem;"
    "border-bottom:1px solid #eee;color:#222;text-decoration:none;overflow-wrap:anywhere}"
    ".nets li:last-child a{border:0}"
    ".card>label:first-child,.card>p:first-child{margin-top:0}.card>p:last-child{margin-bottom:0}"
    "details{margin-top:1rem}summary{color:#555;font-size:.9rem}"
    ".sig{color:#888;font-size:.85rem;white-space:nowrap;margin-left:.6rem}"
    "label{display:block;font-weight:600;margin:.8rem 0 .25rem}"
    "input{width:100%;font:inherit;padding:.65rem;border:1px solid #bbb;border-radius:8px;"
    "background:#fff}"
    "button{font:inherit;font-weight:600;border:0;border-radius:8px;padding:.75rem 1rem;"
    "background:#1f6f5c;color:#fff;width:100%;margin-top:1.1rem}"
    "button.alt{background:#e4e1da;color:#222;margin-top:.6rem}"
    ".hint{font-size:.85rem;color:#666;margin:.25rem 0 0}"
    ".note{border-radius:8px;padding:.7rem .8rem;margin:0 0 1rem}"
    ".bad{background:#fbe3e0;color:#7a1d12}"
    ".good{background:#ddf2e7;color:#145c3a}"
    ".wait{background:#fff4d6;color:#6b5200}"
    ".info{background:#e1ecf7;color:#173f66}"
    "footer{font-size:.8rem;color:#888;margin:1.2rem 0;text-align:center}"
)


def _page(title, body, refresh_s=0):
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
    )
    if refresh_s:
        head += '<meta http-equiv="refresh" content="%d;url=/result">' % refresh_s
    return (
        head
        + "<title>"
        + html_escape(title)
        + "</title><style>"
        + _STYLE
        + "</style></head><body><main>"
        + body
        + "</main></body></html>"
    )


def _note(kind, text):
    return '<p class="note %s">%s</p>' % (kind, html_escape(text))


def _bars(rssi):
    """Signal strength as 1..4 bars in text (no images: the page must stay small)."""
    level = 4 if rssi >= -55 else 3 if rssi >= -67 else 2 if rssi >= -78 else 1
    return "\u25ae" * level + "\u25af" * (4 - level)


def _networks(networks):
    if not networks:
        return '<p class="hint">No networks found yet. Type the name below or scan again.</p>'
    items = []
    for name, rssi, secured in networks:
        items.append(
            '<li><a href="/?ssid=%s"><span>%s</span><span class="sig">%s%s</span></a></li>'
            % (url_quote(name), html_escape(name), "" if secured else "open &middot; ", _bars(rssi))
        )
    return '<ul class="nets">' + "".join(items) + "</ul>"


def _form(ssid, server, device, token):
    focus_password = " autofocus" if ssid else ""
    return (
        '<form class="card" method="post" action="/join">'
        '<input type="hidden" name="token" value="%s">'
        '<label for="ssid">Network name</label>'
        '<input id="ssid" name="ssid" maxlength="32" required autocapitalize="none" '
        'autocomplete="off" spellcheck="false" value="%s">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" maxlength="64" '
        'autocomplete="off"%s>'
        '<p class="hint">Leave empty for an open network.</p>'
        '<label for="server">PC address (optional)</label>'
        '<input id="server" name="server" maxlength="64" inputmode="url" autocapitalize="none" '
        'spellcheck="false" placeholder="192.168.1.20:47800" value="%s">'
        '<p class="hint">Only if your network hides the PC from the meter '
        "(the meter finds it by itself on most home networks).</p>"
        "<details><summary>Setup network password</summary>"
        '<label for="ap_password">New password for %s</label>'
        '<input id="ap_password" name="ap_password" type="password" maxlength="63" '
        'autocomplete="new-password">'
        '<p class="hint">The network you are on now. Leave empty to keep it.</p></details>'
        "<button>Save and join</button></form>"
    ) % (
        html_escape(token),
        html_escape(ssid),
        focus_password,
        html_escape(server),
        html_escape(device or "it"),
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
    body = "<h1>Sysboy2000 setup</h1>"
    if notice:
        body += _note(notice_kind, notice)
    if open_ap:
        body += _note("wait", OPEN_NETWORK)
    body += "<h2>Networks nearby</h2><div class=card>" + _networks(networks)
    if networks:
        body += '<p class="hint">Tap yours to fill in its name.</p>'
    body += '<form method="get" action="/scan"><button class="alt">Scan again</button></form></div>'
    body += "<h2>Join</h2>" + _form(ssid, server, device, token)
    body += "<footer>Meter %s &middot; this page works without internet</footer>" % html_escape(
        device
    )
    return _page("Sysboy2000 setup", body)


def joining_page(ssid, device="", refresh_s=3):
    """Shown before and while the meter joins: what happens next, since the phone may lose
    the setup network meanwhile; the browser reloads it by itself."""
    body = "<h1>Sysboy2000 setup</h1>" + _note(
        "wait", 'Joining "%s"... this can take up to 30 seconds.' % ssid
    )
    body += (
        '<div class="card"><p>The setup network may drop for a few seconds while the meter '
        "joins; your phone rejoins it by itself.</p>"
        "<p>If the join works, the setup network closes and the meter goes on to find the PC. "
        'If it does not, the meter keeps the setup network "%s" open: join it again and this '
        "page says what went wrong.</p></div>"
    ) % html_escape(device or "Sysboy")
    body += '<p class="hint">This page updates by itself.</p>'
    return _page("Joining...", body, refresh_s)


def joined_page(message):
    """The join worked: say so and what happens next."""
    body = "<h1>Sysboy2000 setup</h1>" + _note("good", message)
    body += (
        '<div class="card"><p>Setup is done and this setup network closes now.</p>'
        "<p>Reconnect your phone to your usual Wi-Fi. The meter finds the PC by itself; "
        "start the Sysboy2000 app there if it is not running.</p></div>"
    )
    return _page("Joined", body)


def error_page(status, message):
    """A refused request, in words, with a way back."""
    body = "<h1>Sysboy2000 setup</h1>" + _note("bad", message)
    body += '<p><a href="/">Back to the setup page</a></p>'
    return _page("Error %d" % status, body)
