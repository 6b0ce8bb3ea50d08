"""Pure HTTP/1.x request parsing with hard limits, strict form decoding and HTML escaping."""

import utf8
from micropython import const

MAX_HEAD = 2048  # request line + headers, bytes
MAX_BODY = 1024  # request body, bytes
MAX_HEADERS = 32  # header lines

_METHOD_CHARS = const("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = const(b"0123456789abcdefABCDEF")  # bytes: chr() would intern each byte it is given
# the headers a request keeps: those the portal reads. A phone opens six connections at once,
# and each waits for its turn holding its request: a browser's other headers (User-Agent,
# Accept...) would cost about 1 KB of heap a connection
_KEPT = const(("host", "origin", "content-type", "content-length", "transfer-encoding"))

REASONS = {
    200: "OK",
    204: "No Content",
    302: "Found",
    303: "See Other",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class HTTPError(ValueError):
    """A request the server refuses: `status` is the HTTP code, the text says why in words."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    """One parsed request: method, path, query (dict), headers (lower-case names; only those
    in _KEPT), body."""

    def __init__(self, method, path, query, headers):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = b""

    def header(self, name, default=""):
        """The value of header `name` (lower-case), or `default`."""
        return self.headers.get(name, default)

    def body_length(self):
        """The declared body length, checked against the limit; 0 when there is no body."""
        if "transfer-encoding" in self.headers:
            raise HTTPError(501, "Chunked request bodies are not supported.")
        text = self.headers.get("content-length")
        if text is None:
            if self.method == "POST":
                raise HTTPError(411, "A form must say its length (Content-Length).")
            return 0
        # ASCII digits only: str.isdigit also takes '²', which int() refuses. strip() checks in
        # C: stepping through a str would intern each character it meets, for good
        if not text or len(text) > 9 or text.strip("0123456789"):
            raise HTTPError(400, "The Content-Length header is not a number.")
        n = int(text)
        if n > MAX_BODY:
            raise HTTPError(413, "The form is too large (at most %d bytes)." % MAX_BODY)
        return n


def head_end(buf):
    """Index just past the blank line that ends the head in `buf`, or -1 if not there yet."""
    i = buf.find(b"\r\n\r\n")
    if i >= 0:
        return i + 4
    # bare LF line ends are accepted too, as most servers do
    i = buf.find(b"\n\n")
    return i + 2 if i >= 0 else -1


def drop_headers(head):
    """`head`, the start of a request's head, without whole header lines before its first
    blank line that the portal does not read: (what is left, lines dropped, bytes dropped).
    `parse_head` reads what is left, given those counts, as it would read the whole, and
    `head_end` finds the same end in it.

    A phone's browser sends about 500 bytes of headers the portal never reads; each of six
    connections reading side by side would hold them until its head is complete. The request
    line stays, and so does any line `parse_head` reads or refuses. Only a line that ends in
    CRLF after one that does is dropped: taking out a line between other line ends could
    make a blank line where there was none."""
    start = head.find(b"\n") + 1
    if not start:
        return head, 0, 0
    left = [head[:start]]
    lines = 0
    after_crlf = start > 2 and head[start - 2] == 13  # the request line, not blank, ends in CRLF
    while True:
        end = head.find(b"\n", start) + 1
        if not end:
            break
        line = head[start:end]
        if line in (b"\n", b"\r\n"):
            break  # a blank line: what follows may not be the head's
        crlf = line[-2:] == b"\r\n"
        if after_crlf and crlf and _unread(line):
            lines += 1
        else:
            left.append(line)
            after_crlf = crlf
        start = end
    if not lines:
        return head, 0, 0
    left.append(head[start:])
    kept = b"".join(left)
    return kept, lines, len(head) - len(kept)


def _unread(line):
    """True for a header line (bytes) that parse_head would skip: well-formed, not in _KEPT."""
    try:
        text = line.decode("utf-8")
    except UnicodeError:
        return False
    name, sep, _ = text.partition(":")
    if not sep or not name or name != name.strip() or " " in name or "\t" in name:
        return False
    return name.lower() not in _KEPT


def parse_head(head, dropped_lines=0, dropped_bytes=0):
    """Parse the request line and headers (bytes, up to the blank line) into a Request;
    `dropped_lines` and `dropped_bytes`: what `drop_headers` took out of it."""
    if len(head) + dropped_bytes > MAX_HEAD:
        raise HTTPError(431, "The request headers are too large (at most %d bytes)." % MAX_HEAD)
    try:
        text = head.decode("utf-8")
    except UnicodeError:
        raise HTTPError(400, "The request headers are not valid text.") from None
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise HTTPError(400, "The request is empty.")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HTTPError(400, "The request line is malformed.")
    method, target, version = parts
    if not method or len(method) > 8 or method.strip(_METHOD_CHARS):
        raise HTTPError(400, "The request method is malformed.")
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HTTPError(400, "Only HTTP/1.0 and HTTP/1.1 are spoken here.")
    if len(lines) - 1 + dropped_lines > MAX_HEADERS:
        raise HTTPError(431, "Too many request headers (at most %d)." % MAX_HEADERS)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name or "\t" in name:
            raise HTTPError(400, "A request header is malformed.")
        name = name.lower()
        if name not in _KEPT:
            continue
        value = value.strip()
        if name in headers:
            if name in ("content-length", "host", "transfer-encoding"):
                raise HTTPError(400, "The %s header appears twice." % name)
            value = headers[name] + ", " + value
        headers[name] = value
    path, query = split_target(target)
    return Request(method, path, query, headers)


def split_target(target):
    """Split a request target into (path, query dict); absolute URLs keep only their path."""
    if target.startswith("http://"):
        rest = target[7:]
        slash = rest.find("/")
        target = rest[slash:] if slash >= 0 else "/"
    if not target.startswith("/"):
        raise HTTPError(400, "The request target is malformed.")
    path, _, query = target.partition("?")
    path = percent_decode(path, False)
    return path, decode_form(query)


def percent_decode(text, plus_is_space=True):
    """Strict percent-decoding to text: every `%` needs two hex digits, the result valid UTF-8."""
    if "%" not in text and not (plus_is_space and "+" in text):
        return text
    out = bytearray()
    raw = text.encode("utf-8")
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 37:  # %
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise HTTPError(400, "The form data has broken percent-encoding.")
            out.append(int(pair.decode(), 16))
            i += 3
        elif c == 43 and plus_is_space:  # +
            out.append(32)
            i += 1
        else:
            out.append(c)
            i += 1
    try:
        return utf8.text(out)
    except ValueError:
        raise HTTPError(400, "The form data is not valid UTF-8 text.") from None


def decode_form(data):
    """Decode application/x-www-form-urlencoded `data` (str or bytes) into a dict of str."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = utf8.text(data)
        except ValueError:
            raise HTTPError(400, "The form data is not valid UTF-8 text.") from None
    form = {}
    if not data:
        return form
    for pair in data.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        name = percent_decode(name)
        if len(form) >= 16 and name not in form:
            raise HTTPError(400, "The form has too many fields.")
        # the first value wins, so a field cannot be overridden by a trailing duplicate
        if name not in form:
            form[name] = percent_decode(value)
    return form


def url_quote(text):
    """Percent-encode `text` for a URL query value (unreserved characters stay)."""
    out = bytearray()
    for b in text.encode("utf-8"):
        # bytes, not chr(b): MicroPython keeps every one-letter string it makes for good
        if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b in b"-._~":
            out.append(b)
        else:
            out.extend(b"%%%02X" % b)
    return out.decode()


def html_escape(text):
    """Escape `text` for HTML element content and quoted attribute values."""
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def response(status, body=b"", content_type="text/html; charset=utf-8", headers=None, length=None):
    """A whole HTTP/1.1 response that closes the connection: bytes, or, for a body given as
    a list of pieces (a page) that sends `length` bytes, that list with the head put first."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    pieces = body if isinstance(body, list) else None
    if pieces is None:
        length = len(body)
    lines = [
        "HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error")),
        "Content-Length: %d" % length,
        "Connection: close",
        "Cache-Control: no-store",
    ]
    if length:
        lines.append("Content-Type: " + content_type)
    if headers:
        for name, value in headers:
            lines.append(name + ": " + value)
    head = "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n"
    if pieces is not None:
        pieces.insert(0, head)
        return pieces
    return head + body
