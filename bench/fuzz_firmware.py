"""Fuzz the firmware's pure parsers: nothing may escape but each module's documented error.

    python bench/fuzz_firmware.py                     # 100,000 cases per target and engine
    python bench/fuzz_firmware.py --cases 5000 --targets dns wsframe

Targets (bench/firmware_targets.py checks one case of each, on CPython and MicroPython):
protocol decoder, DNS codec with the portal's answer, WebSocket frame codec with the
stream parser fed in random chunks, portal HTTP parser with its form decoder.

Engines, counted apart:
- mutation: valid messages of each kind, mangled and spliced (seeded, fast);
- hypothesis: structured messages with fields broken, and raw bytes;
- atheris: coverage-guided (libFuzzer), when the `atheris` package is installed;
- micropython: a sample of the cases above replayed by the real MicroPython unix port,
  whose json, str and bytes differ from CPython's.

Prints per target and engine the cases run, their rate, how many were accepted and every
failure, and the rate of a reference parser (json, dnspython, websockets, http.client)
over the same mutated inputs, in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware_micropython"
sys.path.insert(0, str(ROOT))

from bench import firmware_targets as targets  # noqa: E402

TARGETS = targets.TARGETS
MODULES = {"protocol": "protocol", "dns": "dns", "wsframe": "wsframe", "http": "httpparse"}


def _load(name: str) -> ModuleType:
    # by file, under another name: the firmware's `dns` would shadow dnspython's
    spec = importlib.util.spec_from_file_location("firmware_" + name, FIRMWARE / (name + ".py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # atheris instruments only modules it can find there
    spec.loader.exec_module(module)
    return module


sys.modules["micropython"] = _load("micropython")  # const(), which MicroPython compiles away
sys.modules["updatemsg"] = _load("updatemsg")  # decodes update and chunk frames
sys.modules["hellomsg"] = _load("hellomsg")  # decodes the PC's hello and pair frames
sys.modules["fromdevice"] = _load("fromdevice")  # the protocol's decoder of device frames
sys.modules["utf8"] = _load("utf8")  # strict UTF-8, for wsframe's close reasons and forms
PORTALDNS = _load("portaldns")  # the portal's DNS answer, checked with the dns target
FW = {target: _load(name) for target, name in MODULES.items()}
targets.use(FW["protocol"], FW["dns"], FW["wsframe"], FW["http"], PORTALDNS)


def show(case: bytes) -> str:
    """A case, short enough to print."""
    if len(case) <= 120:
        return repr(case)
    return f"{case[:100]!r}... ({len(case)} bytes)"


@dataclass
class Tally:
    """What one engine saw on one target."""

    target: str
    engine: str
    cases: int = 0
    accepted: int | None = 0  # None: the engine cannot tell (atheris)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    sample: list[bytes] = field(default_factory=list)  # cases kept for the MicroPython replay

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0

    def run(self, case: bytes) -> None:
        self.cases += 1
        try:
            self.accepted = (self.accepted or 0) + targets.check(self.target, case)
        except targets.Crash as exc:
            if len(self.failures) < 20:
                self.failures.append(f"{show(case)}: {exc}")


# -- seeds: valid messages of each kind ----------------------------------------------------------


def _protocol_seeds() -> list[bytes]:
    vectors = json.loads((ROOT / "tests" / "vectors" / "protocol.json").read_text("utf-8"))
    return [case["text"].encode("utf-8") for case in vectors["valid"] + vectors["invalid"]]


def _dns_seeds() -> list[bytes]:
    import dns.edns
    import dns.flags
    import dns.message
    import dns.rrset

    fw = FW["dns"]
    out = [
        fw.build_query(qid, name, qtype)
        for qid, name, qtype in [
            (0, "_sysboy._tcp.local", fw._TYPE_PTR),
            (0x1234, "connectivitycheck.gstatic.com", fw._TYPE_A),
            (7, "captive.apple.com", fw._TYPE_AAAA),
            (9, "www.msftconnecttest.com", fw._TYPE_ANY),
            (3, "pc.local", fw._TYPE_SRV),
        ]
    ]
    query = dns.message.make_query("example.com.", "A", use_edns=0, payload=1232)
    query.id = 4321
    out.append(query.to_wire())
    reply = dns.message.Message(id=0)
    reply.flags = dns.flags.QR | dns.flags.AA
    service = "Sysboy\\ on\\ pc._sysboy._tcp.local."
    reply.answer.append(dns.rrset.from_text("_sysboy._tcp.local.", 120, "IN", "PTR", service))
    for rdtype, text in [
        ("SRV", "0 0 47800 pc.local."),
        ("TXT", '"id=5f2a" "path=/device" "proto=1"'),
    ]:
        reply.additional.append(dns.rrset.from_text(service, 120, "IN", rdtype, text))
    reply.additional.append(dns.rrset.from_text("pc.local.", 120, "IN", "A", "192.168.1.20"))
    reply.additional.append(dns.rrset.from_text("pc.local.", 120, "IN", "AAAA", "fe80::1"))
    out.append(reply.to_wire())
    out.append(reply.to_wire()[:40])
    return out


def _wsframe_seeds() -> list[bytes]:
    ws = FW["wsframe"]
    key = b"\x37\xfa\x21\x3d"
    frames = [
        ws.encode_frame(targets.OP_TEXT, b'{"type":"vram","value":60.5}', None),
        ws.encode_frame(targets.OP_TEXT, b"x" * 200, None),
        ws.encode_frame(targets.OP_TEXT, b"y" * 4096, None),
        ws.encode_frame(targets.OP_PING, b"are you there", None),
        ws.encode_frame(targets.OP_PONG, b"", None),
        ws.encode_frame(targets.OP_CLOSE, ws.close_payload(1001, "server stopping"), None),
        ws.encode_frame(targets.OP_CLOSE, b"", None),
        ws.encode_frame(targets.OP_TEXT, b"frag", None, fin=False)
        + ws.encode_frame(targets.OP_CONT, b"ment", None),
        ws.encode_frame(targets.OP_BINARY, bytes(range(256)), None),
        ws.encode_frame(targets.OP_TEXT, b"Hello", key),
        ws.encode_frame(targets.OP_CLOSE, ws.close_payload(1000, "bye"), key),
        b"\x81\x7f" + struct.pack("!Q", 300) + b"z" * 300,
        b"\x81\x7e" + struct.pack("!H", 5) + b"short",
    ]
    # text on its own: the close reason built from it must stay valid UTF-8
    reason = "Ünïcödé reason, €, 😀 ".encode() * 8
    return [*frames, frames[0] + frames[3] + frames[5], frames[1] + frames[7], reason]


def _http_seeds() -> list[bytes]:
    body = b"ssid=My+Home&password=p%40ss%C3%A9&server=&ap_password=sysboy2000"
    return [
        b"GET / HTTP/1.1\r\nHost: 192.168.4.1\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n",
        b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
        b"GET /hotspot-detect.html HTTP/1.0\r\nHost: captive.apple.com\r\n\r\n",
        b"GET /scan?refresh=1&x=%41 HTTP/1.1\nHost: 192.168.4.1\n\n",
        b"GET http://example.com/result?ok=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"POST /join HTTP/1.1\r\nHost: 192.168.4.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body,
        b"POST /join HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        body,
        b"a=1&a=2&b=%zz&c=%E2%82%AC&=&&d",
    ]


SEEDS: dict[str, Callable[[], list[bytes]]] = {
    "protocol": _protocol_seeds,
    "dns": _dns_seeds,
    "wsframe": _wsframe_seeds,
    "http": _http_seeds,
}

# values that sit on each parser's edges
TOKENS = {
    "protocol": [
        b"NaN", b"Infinity", b"1e309", b"-0", b"9" * 400, b"4294967296", b"null", b"true",
        b"[]", b"{}", b'""', b'"\\ud800"', b'"\\u0000"', b'"hello"', b'"type"', b'"value"',
        b"[[0,0],[100,1]]", b"[" * 300, b"]" * 300, b",", b":", b'"', b"\\", b"\xff",
        b"\xed\xa0\x80",
    ],
    "dns": [
        b"\xc0\x0c", b"\xc0\x00", b"\xff\xff", b"\x3f", b"\x40", b"\x80", b"\x00\x01\x00\x01",
        b"\x00\x0c\x00\x01", b"\x00\x21\x80\x01", b"\x00\x10\x00\x01", b"\x00\xff\x00\xff",
        b"\x00\x00", b"\x01\x00", b"\xff", b"\x05local\x00", b"\x00" * 12,
    ],
    "wsframe": [
        b"\x81", b"\x88", b"\x89", b"\x8a", b"\x80", b"\x01", b"\xf1", b"\x83", b"\x7e", b"\x7f",
        b"\xfe", b"\xff\xff", b"\x10\x01", b"\x03\xe8", b"\x03\xed", b"\x0f\xa0", b"\x00" * 8,
        b"\x7f\xff\xff\xff\xff\xff\xff\xff", b"\xc3", b"\xe2\x82", "é€😀".encode() * 20,
    ],
    "http": [
        b"\r\n", b"\n", b"\r\n\r\n", b"%", b"%zz", b"%c3%28", b"%e2%82%ac", b"+", b"&", b"=",
        b"Content-Length: ", b"Content-Length: 99999", b"\xc2\xb2", b"\xd9\xa1\xd9\xa2",
        b"\xef\xbc\x91", b"-1", b"0x10", b"1e3", b" 12", b"9" * 12, b"Host: x",
        b"Transfer-Encoding: chunked", b"HTTP/1.1", b"HTTP/2", b" ", b":", b"\t", b"\xff",
        b"http://", b"?", b"/" * 100, b"a" * 2100,
    ],
}  # fmt: skip


def mutate(rng: random.Random, data: bytes, pool: list[bytes], tokens: list[bytes]) -> bytes:
    """One to four random edits of `data`."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(out))
        op = rng.randrange(9)
        if op == 0 and out:  # flip a bit
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # a random byte
            out[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2:  # an edge token
            out[pos:pos] = rng.choice(tokens)
        elif op == 3 and out:  # cut a range
            del out[pos : pos + rng.randint(1, 16)]
        elif op == 4 and out:  # repeat a range
            out[pos:pos] = out[pos : pos + rng.randint(1, 32)] * rng.randint(1, 8)
        elif op == 5:  # splice another seed in
            other = rng.choice(pool)
            out[pos:] = other[rng.randint(0, len(other)) :]
        elif op == 6 and out:  # overwrite with an edge token
            token = rng.choice(tokens)
            out[pos : pos + len(token)] = token
        elif op == 7:  # swap a number for an edge token
            match = re.search(rb"\d+", bytes(out[pos:]))
            if match:
                out[pos + match.start() : pos + match.end()] = rng.choice(tokens)
        elif out:  # set a byte to an edge value
            out[rng.randrange(len(out))] = rng.choice((0, 1, 0x3F, 0x7E, 0x7F, 0x80, 0xC0, 0xFF))
    return bytes(out)


def mutation_cases(target: str, cases: int, seed: int = 7) -> list[bytes]:
    """`cases` mutated messages for `target`, each behind a random mode byte."""
    rng = random.Random(f"{seed}-{target}")
    pool = SEEDS[target]()
    tokens = TOKENS[target]
    out = []
    for index in range(cases):
        data = rng.choice(pool)
        if index % 10:  # one case in ten is a seed untouched, for the round trips
            data = mutate(rng, data, pool, tokens)
        out.append(bytes([rng.randrange(256)]) + data)
    return out


def run_mutation(target: str, cases: int, seed: int = 7, keep: int = 0) -> Tally:
    tally = Tally(target, "mutation")
    inputs = mutation_cases(target, cases, seed)
    started = time.perf_counter()
    for case in inputs:
        tally.run(case)
    tally.seconds = time.perf_counter() - started
    tally.sample = inputs[:: max(1, len(inputs) // keep)][:keep] if keep else []
    return tally


# -- reference parsers, for the baseline --------------------------------------------------------


def _json_reference(data: bytes) -> None:
    json.loads(data)


def _dns_reference(data: bytes) -> None:
    import dns.message

    dns.message.from_wire(data)


def _ws_reference(data: bytes) -> None:
    from websockets.frames import Frame
    from websockets.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False, max_size=4096)
    try:  # noqa: SIM105 (contextlib.suppress would add its own cost to the baseline)
        next(parser)
    except StopIteration:
        pass


def _http_reference(data: bytes) -> None:
    import http.client
    import io

    stream = io.BytesIO(data)
    stream.readline(65537)
    http.client.parse_headers(stream)


REFERENCE: dict[str, tuple[str, Callable[[bytes], None]]] = {
    "protocol": ("json.loads", _json_reference),
    "dns": ("dnspython from_wire", _dns_reference),
    "wsframe": ("websockets Frame.parse", _ws_reference),
    "http": ("http.client parse_headers", _http_reference),
}


def reference_rate(target: str, cases: int, seed: int = 7) -> float:
    """Cases per second of the reference parser over the same mutated inputs."""
    _name, parse = REFERENCE[target]
    inputs = mutation_cases(target, cases, seed)
    started = time.perf_counter()
    for case in inputs:
        try:  # noqa: SIM105 (contextlib.suppress would add its own cost to the baseline)
            parse(case[1:])
        except Exception:
            pass
    return len(inputs) / (time.perf_counter() - started)


# -- hypothesis ---------------------------------------------------------------------------------


def _strategies(target: str):  # type: ignore[no-untyped-def]
    """Structured messages of `target`'s kind, some broken, and raw bytes."""
    from hypothesis import strategies as st

    seeds = SEEDS[target]()
    raw = st.binary(max_size=600) | st.binary(min_size=4000, max_size=4300)
    if target == "protocol":
        json_values = st.recursive(
            st.none()
            | st.booleans()
            | st.floats()
            | st.integers(min_value=-(2**70), max_value=2**70)
            | st.text(max_size=40),
            lambda inner: (
                st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=4)
            ),
            max_leaves=8,
        )
        templates = [json.loads(text) for text in seeds if _is_object(text)]
        keys = sorted({key for template in templates for key in template})

        @st.composite
        def warped(draw: st.DrawFn) -> bytes:
            obj = dict(draw(st.sampled_from(templates)))
            for key in draw(st.lists(st.sampled_from(keys), max_size=3)):
                if draw(st.booleans()):
                    obj[key] = draw(json_values)
                else:
                    obj.pop(key, None)
            return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf-8")

        structured = warped() | json_values.map(lambda v: json.dumps(v).encode())
    elif target == "dns":
        names = st.lists(st.text(max_size=20), max_size=5).map(".".join) | st.sampled_from(
            ["_sysboy._tcp.local", "pc.local.", "", ".", "a..b"]
        )

        @st.composite
        def packet(draw: st.DrawFn) -> bytes:
            header = struct.pack(
                "!HHHHHH",
                draw(st.integers(0, 0xFFFF)),
                draw(st.sampled_from([0, 0x0100, 0x8400, 0x8000, 0x2800, 0xFFFF])),
                *(draw(st.integers(0, 3)) for _ in range(4)),
            )
            body = b""
            for _ in range(draw(st.integers(0, 4))):
                name = draw(names)
                try:
                    body += FW["dns"].encode_name(name)
                except FW["dns"].DNSError:
                    body += draw(st.binary(max_size=8))
                if draw(st.booleans()):
                    body = body[:-1] + draw(
                        st.sampled_from([b"\xc0\x0c", b"\xc0\x0d", b"\xc0\x00"])
                    )
                rtype = draw(
                    st.sampled_from([1, 12, 16, 28, 33, 41, 255, draw(st.integers(0, 65535))])
                )
                body += struct.pack("!HH", rtype, draw(st.sampled_from([1, 0x8001, 255])))
                if draw(st.booleans()):
                    rdata = draw(st.binary(max_size=40))
                    size = draw(st.sampled_from([len(rdata), len(rdata) + 1, 0]))
                    body += struct.pack("!IH", draw(st.integers(0, 2**32 - 1)), size) + rdata
            return header + body

        structured = packet()
    elif target == "wsframe":

        @st.composite
        def stream(draw: st.DrawFn) -> bytes:
            out = b""
            for _ in range(draw(st.integers(1, 4))):
                opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10, 3, 11]))
                payload = draw(st.binary(max_size=300) | st.binary(min_size=4090, max_size=4100))
                first = (0x80 if draw(st.booleans()) else 0) | opcode
                first |= draw(st.sampled_from([0, 0, 0x40]))
                mask = draw(st.none() | st.binary(min_size=4, max_size=4))
                n = len(payload)
                form = draw(st.sampled_from(["short", "16", "64"]))
                bit = 0x80 if mask is not None else 0
                if form == "short" and n < 126:
                    header = bytes([first, bit | n])
                elif form == "64" or n > 0xFFFF:
                    header = bytes([first, bit | 127]) + struct.pack("!Q", n)
                else:
                    header = bytes([first, bit | 126]) + struct.pack("!H", n)
                out += header + (mask or b"") + payload
            return out[: draw(st.integers(0, len(out)))] if draw(st.booleans()) else out

        # valid UTF-8 text too: the close reason cut from it must stay valid UTF-8
        structured = stream() | st.text(min_size=40, max_size=200).map(str.encode)
    else:
        token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-%+&=", max_size=20)
        # digits of every script: str.isdigit says yes to more than int() reads
        digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=4)
        values = st.text(max_size=12) | digits | st.integers(-5, 5000).map(str)

        @st.composite
        def request(draw: st.DrawFn) -> bytes:
            method = draw(st.sampled_from(["GET", "POST", "HEAD", "get", "", "PUTXXXXXX"]))
            target_ = draw(st.sampled_from(["/", "/join", "http://x/", "*", ""])) + draw(token)
            version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", ""]))
            end = draw(st.sampled_from(["\r\n", "\n"]))
            lines = [f"{method} {target_} {version}"]
            for _ in range(draw(st.integers(0, 5))):
                name = draw(st.sampled_from(["Host", "Content-Length", "Transfer-Encoding", " X"]))
                lines.append(f"{name}:{draw(values)}")
            body = draw(token)
            return (end.join(lines) + end + end + body).encode("utf-8")

        form = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5).map(
            lambda d: "&".join(k + "=" + v for k, v in d.items()).encode("utf-8")
        )
        structured = request() | form
    return st.binary(min_size=1, max_size=1).flatmap(
        lambda mode: (structured | raw | st.sampled_from(seeds)).map(lambda data: mode + data)
    )


def _is_object(text: bytes) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def run_hypothesis(target: str, cases: int, keep: int = 0) -> Tally:
    """Cases drawn by hypothesis; a failure is shrunk to a small example."""
    from hypothesis import HealthCheck, given, settings

    tally = Tally(target, "hypothesis")
    every = max(1, cases // keep) if keep else 0

    @settings(
        max_examples=cases, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(_strategies(target))
    def one(case: bytes) -> None:
        if every and tally.cases % every == 0 and len(tally.sample) < keep:
            tally.sample.append(case)
        before = len(tally.failures)
        tally.run(case)
        if len(tally.failures) > before:
            raise AssertionError(tally.failures.pop())

    started = time.perf_counter()
    try:
        one()
    except AssertionError as exc:  # already shrunk by hypothesis
        tally.failures.append("".join(traceback.format_exception_only(exc)).strip())
    tally.seconds = time.perf_counter() - started
    return tally


# -- atheris ------------------------------------------------------------------------------------


def atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_atheris(target: str, cases: int, max_seconds: int = 600) -> Tally:
    """Coverage-guided fuzzing in a child process (libFuzzer exits when it is done)."""
    tally = Tally(target, "atheris", accepted=None)
    with tempfile.TemporaryDirectory(prefix="sysboy-fwfuzz-") as corpus:
        for index, data in enumerate(SEEDS[target]()):
            Path(corpus, f"seed-{index}").write_bytes(bytes([index]) + data)
        started = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--atheris-child",
                target,
                f"-runs={cases}",
                "-max_len=4400",
                f"-max_total_time={max_seconds}",
                "-print_final_stats=1",
                f"-artifact_prefix={corpus}/",
                corpus,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        tally.seconds = time.perf_counter() - started
    done = re.search(r"Done (\d+) runs in", out.stderr)
    stat = re.search(r"stat::number_of_executed_units:\s*(\d+)", out.stderr)
    tally.cases = int(done.group(1)) if done else int(stat.group(1)) if stat else 0
    if out.returncode != 0:
        tally.failures.append(
            f"atheris exited with {out.returncode}:\n{out.stderr[-2000:].strip()}"
        )
    return tally


def atheris_child(target: str, argv: list[str]) -> None:
    import atheris

    # only the code under test: instrumenting all of the standard library takes long
    for module in [*FW.values(), targets]:
        for obj in vars(module).values():
            functions = vars(obj).values() if isinstance(obj, type) else [obj]
            for func in functions:
                if callable(func) and getattr(func, "__module__", None) == module.__name__:
                    atheris.instrument_func(func)

    def one_input(case: bytes) -> None:
        targets.check(target, case)  # a Crash escapes: libFuzzer saves the input

    atheris.Setup([sys.argv[0], *argv], one_input)
    atheris.Fuzz()


# -- the real MicroPython ----------------------------------------------------------------------


def micropython() -> str | None:
    import shutil

    beside = Path(sys.executable).parent / "micropython"
    return str(beside) if beside.exists() else shutil.which("micropython")


def run_micropython(target: str, cases: list[bytes], timeout: float = 600) -> Tally:
    """Replay `cases` under the MicroPython unix port; each must be accepted or refused."""
    tally = Tally(target, "micropython")
    binary = micropython()
    if binary is None:
        tally.failures.append("the micropython binary is missing")
        return tally
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.writelines(f"{target} {case.hex()}\n" for case in cases)
    try:
        started = time.perf_counter()
        out = subprocess.run(
            [binary, "-X", "heapsize=512K", str(ROOT / "bench" / "firmware_targets.py"), f.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        tally.seconds = time.perf_counter() - started
    finally:
        os.unlink(f.name)
    lines = [line for line in out.stdout.splitlines() if not line.startswith("total ")]
    tally.cases = len(lines)
    tally.accepted = lines.count("ok")
    for case, line in zip(cases, lines, strict=False):
        if line not in ("ok", "refused") and len(tally.failures) < 20:
            tally.failures.append(f"{show(case)}: {line}")
    if out.returncode != 0 or tally.cases != len(cases):
        tally.failures.append(f"micropython exited with {out.returncode}: {out.stderr[-2000:]}")
    return tally


# -- report -------------------------------------------------------------------------------------


def report(tally: Tally, reference: float | None = None) -> None:
    ratio = ""
    if reference:
        ratio = f", {reference / tally.rate:5.2f}x the time of {REFERENCE[tally.target][0]}"
    accepted = "?" if tally.accepted is None else tally.accepted
    print(
        f"{tally.target:9s}{tally.engine:12s}{tally.cases:8d} cases in {tally.seconds:6.1f} s "
        f"({tally.rate:8.0f}/s), {accepted} accepted, {len(tally.failures)} failure(s){ratio}",
        flush=True,
    )
    for failure in tally.failures:
        print(f"  FAIL {failure}")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--atheris-child":
        atheris_child(sys.argv[2], sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases per target and engine")
    parser.add_argument("--replay", type=int, default=5000, help="cases per target for MicroPython")
    parser.add_argument("--seed", type=int, default=7, help="seed of the mutation engine")
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    args = parser.parse_args()
    sys.setrecursionlimit(1000)  # the default: deep nesting must be caught, not avoided

    failed = 0
    for target in args.targets:
        reference = reference_rate(target, args.cases, args.seed)
        print(f"{target:9s}{'reference':12s}{REFERENCE[target][0]} {reference:8.0f}/s", flush=True)
        tallies = [
            (run_mutation(target, args.cases, args.seed, keep=args.replay // 2), reference),
            (run_hypothesis(target, args.cases, keep=args.replay - args.replay // 2), None),
        ]
        if atheris_available():
            tallies.append((run_atheris(target, args.cases), None))
        else:
            print(f"{target:9s}{'atheris':12s}not installed: skipped (pip install atheris)")
        sample = [case for tally, _ in tallies for case in tally.sample]
        tallies.append((run_micropython(target, sample), None))
        for tally, base in tallies:
            report(tally, base)
            wanted = len(sample) if tally.engine == "micropython" else args.cases
            failed += bool(tally.failures) or tally.cases < wanted
    print("total: " + ("no failure" if not failed else f"{failed} run(s) failed or ran short"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
