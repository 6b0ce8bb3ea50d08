"""One fuzz case of each firmware parser, checked alike on CPython and on MicroPython.

A case is bytes: its first byte (the mode) says how the rest is fed: which sender, text or
bytes, how a stream is cut into chunks. `check(target, case)` returns True when the parser
accepted the input and False when it refused it with its own documented error; anything
else (a stray exception, a broken round trip) raises `Crash`.

Targets: protocol (ProtocolError), dns (DNSError; portal_reply gives bytes or None),
wsframe (WSError; FrameParser fed in chunks), http (HTTPError; head, body length, forms).

Under MicroPython, `micropython bench/firmware_targets.py CASES` reads lines `target hex`
and prints one line per case (`ok`, `refused` or `crash <type>: <text>`), then the totals.
"""

# ruff: noqa: UP031 (the same file runs on MicroPython, where % is the cheap formatting)
import sys

CPYTHON = sys.implementation.name == "cpython"
TARGETS = ("protocol", "dns", "wsframe", "http")
PORTAL_IP = "192.168.4.1"
TYPE_A = 1  # DNS
# RFC 6455's opcodes and close codes (the firmware folds its own into its code)
OP_CONT = 0
OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NO_STATUS = 1005
CLOSE_TOO_BIG = 1009

# the firmware modules under test, given by `use` (names differ between the runtimes)
_fw = {}


class Crash(Exception):
    """A parser raised what it does not document, or a valid input did not round-trip."""


def use(protocol, dns, wsframe, httpparse, portaldns):
    """Check these module objects (the firmware's protocol, dns, wsframe, httpparse, and
    portaldns, whose answers the dns target checks too)."""
    _fw["protocol"] = protocol
    _fw["dns"] = dns
    _fw["portal"] = portaldns
    _fw["wsframe"] = wsframe
    _fw["http"] = httpparse


def check(target, case):
    """Feed `case` to `target`; True if accepted, False if refused in words; else Crash."""
    try:
        return _CHECKS[target](case[:1][0] if case else 0, bytes(case[1:]))
    except Crash:
        raise
    except Exception as exc:  # the whole point: nothing else may escape
        raise Crash(type(exc).__name__ + ": " + str(exc)[:200]) from exc


def _text(data):
    """`data` as text if it is UTF-8, else None."""
    try:
        return str(data, "utf-8")
    except ValueError:  # UnicodeError on both runtimes
        return None


def _expect(condition, what):
    if not condition:
        raise Crash(what)


def _refusal(exc):
    _expect(str(exc) != "", type(exc).__name__ + " without a reason")
    return False


# -- protocol ---------------------------------------------------------------------------------


def _protocol(mode, data):
    protocol = _fw["protocol"]
    sender = "server" if mode & 1 else "device"
    frame = data
    if mode & 2:
        text = _text(data)
        if text is None and CPYTHON:
            # a str may hold lone surrogates on CPython (never on MicroPython)
            text = data.decode("utf-8", "surrogateescape")
        if text is not None:
            frame = text
    try:
        message = protocol.decode(frame, sender)
    except protocol.ProtocolError as exc:
        return _refusal(exc)
    _expect(isinstance(message, dict) and isinstance(message.get("type"), str), "not a message")
    text = protocol.encode(message)
    again = protocol.decode(text, sender)
    _expect(again == message, "re-encoded as %r, which decodes differently" % text[:200])
    return True


# -- dns --------------------------------------------------------------------------------------


def _dns(mode, data):
    dns = _fw["dns"]
    accepted = True
    try:
        message = dns.parse(data)
    except dns.DNSError as exc:
        accepted = _refusal(exc)
    if accepted:
        for key in ("questions", "answers", "authority", "additional"):
            _expect(isinstance(message[key], list), key + " is not a list")
    _portal(data)
    # a name made of the same bytes must survive build_query -> parse
    name = _text(data[:80])
    if name is not None:
        _query_round_trip(name, mode)
    return accepted


def _portal(query):
    dns = _fw["dns"]
    reply = _fw["portal"].portal_reply(query, PORTAL_IP)
    if reply is None:
        return
    _expect(isinstance(reply, bytes), "portal_reply gave a " + type(reply).__name__)
    asked, _ = dns._question(query, 12)
    got = dns.parse(reply)  # the portal's own answer must be well formed
    _expect(got["id"] == (query[0] << 8 | query[1]), "portal reply has another id")
    _expect(got["questions"] == [asked], "portal reply changed the question")
    for record in got["answers"]:
        _expect(record["data"] == PORTAL_IP and record["ttl"] == 60, "portal answer %r" % record)


def _query_round_trip(name, mode):
    dns = _fw["dns"]
    qtype = (TYPE_A, 28, 12, 33, 16)[mode % 5]  # A, AAAA, PTR, SRV, TXT
    try:
        query = dns.build_query(mode * 257, name, qtype)
    except dns.DNSError:
        return
    got = dns.parse(query)
    plain = name[:-1] if name.endswith(".") else name
    _expect(got["questions"] == [(plain, qtype, 1)], "query for %r read back wrong" % name)
    reply = dns.parse(_fw["portal"].portal_reply(query, PORTAL_IP))
    answers = [r["data"] for r in reply["answers"]]
    _expect(answers == ([PORTAL_IP] if qtype == TYPE_A else []), "portal answered %r" % answers)


# -- wsframe ----------------------------------------------------------------------------------


class _Whole:
    """Frames read from the whole of `data` with parse_frame, one at a time."""

    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.refused = False
        self.frames = 0

    def next(self):
        """(fin, opcode, payload, masked), or None at the end or on a refusal."""
        ws = _fw["wsframe"]
        if self.refused:
            return None
        try:
            header = ws.read_header(self.data, self.pos)
            got = ws.parse_frame(self.data, self.pos)
        except ws.WSError as exc:
            self.refused = not _refusal(exc)
            return None
        _expect((header is None) == (got is None), "read_header and parse_frame disagree")
        if got is None:
            return None
        fin, opcode, payload, used = got
        _expect(used > 0 and self.pos + used <= len(self.data), "frame of %d bytes" % used)
        self.pos += used
        self.frames += 1
        frame = (fin, opcode, payload, header[2] >= 0)
        _reencode(frame)
        _close_payload(frame)
        return frame


def _reencode(frame):
    ws = _fw["wsframe"]
    fin, opcode, payload, _masked = frame
    for key in (None, b"\x9a\x01\xff\x30"):
        raw = ws.encode_frame(opcode, payload, key, fin)
        _expect(ws.parse_frame(raw) == (fin, opcode, payload, len(raw)), "frame did not round-trip")


def _close_payload(frame):
    ws = _fw["wsframe"]
    if frame[1] != OP_CLOSE:
        return
    try:
        code, reason = ws.parse_close(frame[2])
    except ws.WSError as exc:
        _refusal(exc)
        return
    if code != CLOSE_NO_STATUS:
        again = ws.parse_close(ws.close_payload(code, reason))
        _expect(again == (code, reason), "close payload did not round-trip")


def _wsframe(mode, data):
    """parse_frame over the whole input and a FrameParser fed in chunks must agree."""
    ws = _fw["wsframe"]
    whole = _Whole(data)
    parser = ws.FrameParser()
    fed = 0
    seed = mode
    refused = False
    # compared frame by frame: a stream of 2-byte frames must not pile up in memory
    try:
        while True:
            while True:
                got = parser.next()
                if got is None:
                    break
                expected = whole.next()
                _expect(expected is not None, "FrameParser read a frame parse_frame did not")
                _expect(not expected[3], "FrameParser took a masked frame")
                same = expected[:3] == (got[0], got[1], bytes(got[2]))
                _expect(same, "FrameParser read another frame than parse_frame")
            if fed == len(data):
                break
            space = parser.space()
            if not len(space):
                raise ws.WSError("receive buffer full", CLOSE_TOO_BIG)
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            size = len(space) if mode == 0 else 1 + seed % (mode * 17)
            n = min(len(space), size, len(data) - fed)
            space[:n] = data[fed : fed + n]
            parser.filled(n)
            fed += n
    except ws.WSError as exc:
        refused = not _refusal(exc)
    expected = whole.next()
    # the stream parser refuses masked frames (a server never masks) and what parse_frame does
    if refused:
        _expect(whole.refused or (expected is not None and expected[3]), "FrameParser refused")
    else:
        _expect(expected is None and not whole.refused, "FrameParser missed a frame or an error")
    while expected is not None:
        expected = whole.next()  # the rest still gets its round trips checked
    reason = _text(data[:200])
    if reason is not None:
        _code, kept = ws.parse_close(ws.close_payload(CLOSE_PROTOCOL_ERROR, reason))
        _expect(reason.startswith(kept), "close reason %r came back as %r" % (reason, kept))
    return whole.frames > 0 and not whole.refused


# -- http -------------------------------------------------------------------------------------


def _status(exc):
    http = _fw["http"]
    _expect(exc.status in http.REASONS and exc.status >= 400, "HTTPError status %r" % exc.status)
    return _refusal(exc)


def _form_round_trip(form):
    http = _fw["http"]
    _expect(all(isinstance(k, str) and isinstance(v, str) for k, v in form.items()), "form types")
    pairs = [http.url_quote(k) + "=" + http.url_quote(v) for k, v in form.items()]
    _expect(http.decode_form("&".join(pairs)) == form, "form did not round-trip")


def _http(mode, data):
    http = _fw["http"]
    end = http.head_end(data)
    _expect(end == -1 or 2 <= end <= len(data), "head_end gave %d" % end)
    accepted = True
    try:
        request = http.parse_head(data if end < 0 else data[:end])
    except http.HTTPError as exc:
        accepted = _status(exc)
    if accepted:
        _expect(isinstance(request.path, str) and isinstance(request.query, dict), "request types")
        try:
            length = request.body_length()
            _expect(0 <= length <= http.MAX_BODY, "body length %r" % length)
        except http.HTTPError as exc:
            _status(exc)
    try:
        form = http.decode_form(data)
    except http.HTTPError as exc:
        form = _status(exc)
    else:
        _form_round_trip(form)
    text = _text(data)
    if text is not None:
        try:
            same = http.decode_form(text)
        except http.HTTPError as exc:
            same = _status(exc)
        _expect(same == form, "the form reads differently as text and as bytes")
        _expect(http.percent_decode(http.url_quote(text)) == text, "url_quote did not round-trip")
        try:
            http.percent_decode(text, bool(mode & 1))
        except http.HTTPError as exc:
            _status(exc)
        escaped = http.html_escape(text)
        for ch in "<>\"'":
            _expect(ch not in escaped, "html_escape left " + ch)
    return accepted


_CHECKS = {"protocol": _protocol, "dns": _dns, "wsframe": _wsframe, "http": _http}


def replay(path):
    """Check every `target hex` line of the file at `path`; print a line per case."""
    import binascii

    counts = {}
    with open(path) as f:
        for line in f:
            target, _, data = line.strip().partition(" ")
            if not target:
                continue
            case = binascii.unhexlify(data)
            try:
                outcome = "ok" if check(target, case) else "refused"
            except Crash as exc:
                outcome = "crash " + str(exc).replace("\n", " ")
            print(outcome)
            key = target + " " + outcome.split(" ")[0]
            counts[key] = counts.get(key, 0) + 1
    for key in sorted(counts):
        print("total %s %d" % (key, counts[key]))


def _main():
    folder = sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else "."
    sys.path.insert(0, folder + "/../firmware_micropython")
    import dns
    import httpparse
    import portaldns
    import protocol
    import wsframe

    use(protocol, dns, wsframe, httpparse, portaldns)
    replay(sys.argv[1])


if __name__ == "__main__":
    _main()
