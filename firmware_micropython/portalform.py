"""The setup form's checks. The portal loads this module when a form arrives and lets it go
before it saves the settings (with `config`, which it lets go too): a form comes once, and
the page loads before it need the heap this code would take."""

from httpparse import HTTPError, decode_form
from micropython import const

_DEFAULT_PC_PORT = const(47800)  # the PC app's default port, used when the address has none


def check_form(form):
    """The settings the setup form asks to save, checked; HTTPError(400) says what is wrong."""
    ssid = form.get("ssid", "")
    password = form.get("password", "")
    server = form.get("server", "").strip()
    ap_password = form.get("ap_password", "")
    if not ssid:
        raise HTTPError(400, "Enter the name of the Wi-Fi network.")
    # what the client typed is read as bytes: stepping through a str would intern each
    # character it meets, for good, and a client could fill the heap with new ones
    raw = ssid.encode("utf-8")
    if len(raw) > 32 or any(b < 32 for b in raw):
        raise HTTPError(400, "A Wi-Fi network name has at most 32 bytes and no control characters.")
    if password and not (8 <= len(password) <= 63 or _is_hex_key(password)):
        raise HTTPError(400, "A Wi-Fi password has 8 to 63 characters (empty for an open network).")
    if any(b < 32 or b > 126 for b in (password + ap_password).encode("utf-8")):
        raise HTTPError(400, "A Wi-Fi password uses plain letters, digits and signs only.")
    settings = {"ssid": ssid, "password": password, "server": check_server(server)}
    if ap_password:
        if not 8 <= len(ap_password) <= 63:
            raise HTTPError(400, "The setup network password needs 8 to 63 characters.")
        settings["ap_password"] = ap_password
    return settings


def _is_hex_key(text):
    return len(text) == 64 and not text.strip("0123456789abcdefABCDEF")


def check_server(text):
    """A manual PC address as "host:port" ("" stays ""); HTTPError(400) if it is not one."""
    if not text:
        return ""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(_DEFAULT_PC_PORT)
    bad = HTTPError(400, "The PC address must look like 192.168.1.20:%d." % _DEFAULT_PC_PORT)
    if not host or len(host) > 63 or not port.isdigit() or not 0 < int(port) < 65536:
        raise bad
    if host.strip("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-"):
        raise bad
    return host + ":" + str(int(port))


def check_origin(portal, request):
    """Refuse a form sent from any page but this portal's own (CSRF, DNS rebinding)."""
    origin = request.header("origin")
    foreign = HTTPError(403, "The setup form can only be sent from the meter's own page.")
    if request.header("host") not in portal.hosts:
        raise foreign
    if origin and (not origin.startswith("http://") or origin[7:] not in portal.hosts):
        raise foreign  # "null" too: a sandboxed or local page


def join_form(portal, request, origin=True):
    """The setup form `request` sent to `portal`, checked: the settings to save (a dict),
    or the page again, saying what is wrong. HTTPError for a request that is no form of this
    page's (`origin`: its Origin and Host are checked too)."""
    if origin:
        check_origin(portal, request)
    kind = request.header("content-type").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPError(415, "The setup form must be sent as a web form.")
    form = decode_form(request.body)
    if form.get("token") != portal.token:
        print("portal refused a form without this page's token")
        words = "The page was out of date. Check the form and send it again."
        return portal._setup_page(form.get("ssid", ""), form.get("server", ""), words, 403)
    try:
        return check_form(form)
    except HTTPError as exc:
        return portal._setup_page(form.get("ssid", ""), form.get("server", ""), exc.message, 400)
