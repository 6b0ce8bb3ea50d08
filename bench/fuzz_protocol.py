"""Fuzz the PC protocol decoder: no input may raise anything but `ProtocolError`.

    python bench/fuzz_protocol.py                  # 100,000 cases per engine
    python bench/fuzz_protocol.py --cases 5000     # shorter

Three engines, each counted apart:
- mutation: the golden vectors, mangled byte by byte and spliced (seeded, fast);
- hypothesis: random text and bytes, and valid messages with fields swapped for any JSON;
- atheris: coverage-guided (libFuzzer), when the `atheris` package is installed.

An accepted frame must also re-encode to a frame that decodes to the same message.
Prints, per engine, the cases run, their rate, how many were accepted, and every failure.
The baseline is a bare `json.loads` of the same mutated inputs, timed in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests" / "vectors" / "protocol.json").read_text("utf-8"))
SENDERS = ("device", "server")

# fragments that sit on the decoder's edges: non-finite numbers, huge and negative
# numbers, wrong JSON types, reserved words, lone surrogates, deep nesting
TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e309", "-1e309", "-0", "0.0", "1e-400", "9" * 5000,
    "4294967296", "-200", "null", "true", "false", "[]", "{}", '""', '"\\ud800"', '"\\u0000"',
    '"hello"', '"type"', '"value"', '"calibration"', '"metrics"', '"points"', '"press"',
    '[[0,0],[100,1]]', "[" * 600, "]" * 600, '{"a":' * 300, ",", ":", '"', "\\", "\x00",
]  # fmt: skip


@dataclass
class Tally:
    """What one engine saw."""

    name: str
    cases: int = 0
    accepted: int | None = 0  # None: the engine cannot tell (atheris)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0


def check(data: str | bytes, sender: str) -> bool:
    """Decode `data`; True if accepted. Raises AssertionError on anything but ProtocolError."""
    from sysboy_tray import protocol
    from sysboy_tray.errors import ProtocolError

    try:
        message = protocol.decode(data, sender)  # type: ignore[arg-type]
    except ProtocolError as exc:
        if not str(exc):
            raise AssertionError("a ProtocolError without a reason") from None
        return False
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}") from exc
    text = protocol.encode(message)
    again = protocol.decode(text, sender)  # type: ignore[arg-type]
    if again != message:
        raise AssertionError(f"re-encoded as {text[:200]!r}, which decodes differently")
    return True


def _record(tally: Tally, data: str | bytes, sender: str, exc: BaseException) -> None:
    if len(tally.failures) < 20:
        tally.failures.append(f"{sender} {data[:300]!r}: {exc}")


# -- mutation -------------------------------------------------------------------------------


def seeds() -> list[bytes]:
    return [case["text"].encode("utf-8") for case in VECTORS["valid"] + VECTORS["invalid"]]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One to four random edits of `data`."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(out))
        op = rng.randrange(7)
        if op == 0 and out:  # flip a bit
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # a random byte
            out[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2:  # an edge token
            out[pos:pos] = rng.choice(TOKENS).encode("utf-8", "surrogatepass")
        elif op == 3 and out:  # cut a range
            end = min(len(out), pos + rng.randint(1, 16))
            del out[pos:end]
        elif op == 4 and out:  # repeat a range
            end = min(len(out), pos + rng.randint(1, 32))
            out[pos:pos] = out[pos:end] * rng.randint(1, 8)
        elif op == 5:  # splice another seed in
            other = rng.choice(pool)
            cut = rng.randint(0, len(other))
            out[pos:] = other[cut:]
        else:  # swap a number for an edge token
            match = re.search(rb"-?\d+(\.\d+)?", bytes(out[pos:]))
            if match:
                start, end = pos + match.start(), pos + match.end()
                out[start:end] = rng.choice(TOKENS[:12]).encode()
    return bytes(out)


def mutation_inputs(cases: int, seed: int = 7) -> Iterator[tuple[str | bytes, str]]:
    """`cases` mutated frames, half as bytes and half as text (lone surrogates kept)."""
    rng = random.Random(seed)
    pool = seeds()
    for index in range(cases):
        data = mutate(rng, rng.choice(pool), pool)
        sender = SENDERS[index % 2]
        if index % 4 < 2:
            yield data, sender
        else:
            yield data.decode("utf-8", "surrogateescape"), sender


def run_mutation(cases: int, seed: int = 7) -> Tally:
    tally = Tally("mutation")
    inputs = list(mutation_inputs(cases, seed))
    started = time.perf_counter()
    for data, sender in inputs:
        tally.cases += 1
        try:
            tally.accepted = (tally.accepted or 0) + check(data, sender)
        except AssertionError as exc:
            _record(tally, data, sender, exc)
    tally.seconds = time.perf_counter() - started
    return tally


def bare_json_rate(cases: int, seed: int = 7) -> float:
    """Baseline: `json.loads` alone over the same mutated frames, per second."""
    inputs = list(mutation_inputs(cases, seed))
    started = time.perf_counter()
    for data, _sender in inputs:
        try:  # noqa: SIM105 (contextlib.suppress would add its own cost to the baseline)
            json.loads(data)
        except (ValueError, RecursionError):
            pass
    return len(inputs) / (time.perf_counter() - started)


# -- hypothesis -----------------------------------------------------------------------------


def run_hypothesis(cases: int) -> Tally:
    """Random frames from hypothesis; a failure is shrunk to a small example."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    tally = Tally("hypothesis")
    json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.floats()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.text(max_size=40),
        lambda inner: (
            st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=8,  # deeper trees cost hypothesis more than they find; mutation goes deep
    )
    templates = [json.loads(case["text"]) for case in VECTORS["valid"]]
    keys = sorted({key for template in templates for key in template})

    @st.composite
    def warped(draw: st.DrawFn) -> str:
        """A valid message with some fields removed or replaced by any JSON value."""
        obj = dict(draw(st.sampled_from(templates)))
        for key in draw(st.lists(st.sampled_from(keys), max_size=3)):
            if draw(st.booleans()):
                obj[key] = draw(json_values)
            else:
                obj.pop(key, None)
        return json.dumps(obj, ensure_ascii=draw(st.booleans()))

    frames = (
        st.text(max_size=5000)
        | st.binary(max_size=5000)
        | warped()
        | json_values.map(json.dumps)
        | st.text(alphabet='{}[]":,0123456789.eE-+ntrufalsNIiy \\u', max_size=200)
    )

    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(frames, st.sampled_from(SENDERS))
    def one(data: str | bytes, sender: str) -> None:
        tally.cases += 1
        tally.accepted = (tally.accepted or 0) + check(data, sender)

    started = time.perf_counter()
    try:
        one()
    except AssertionError as exc:  # already shrunk by hypothesis
        tally.failures.append("".join(traceback.format_exception_only(exc)).strip())
    tally.seconds = time.perf_counter() - started
    return tally


# -- atheris --------------------------------------------------------------------------------


def atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_atheris(cases: int, max_seconds: int = 600) -> Tally:
    """Coverage-guided fuzzing in a child process (libFuzzer exits when it is done)."""
    tally = Tally("atheris", accepted=None)
    with tempfile.TemporaryDirectory(prefix="sysboy-fuzz-") as corpus:
        for index, data in enumerate(seeds()):
            Path(corpus, f"seed-{index}").write_bytes(b"\x00" + data)
        started = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--atheris-child",
                f"-runs={cases}",
                "-max_len=4200",
                f"-max_total_time={max_seconds}",
                "-print_final_stats=1",
                f"-artifact_prefix={corpus}/",
                corpus,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        tally.seconds = time.perf_counter() - started
    done = re.search(r"Done (\d+) runs in", out.stderr)
    stat = re.search(r"stat::number_of_executed_units:\s*(\d+)", out.stderr)
    tally.cases = int(done.group(1)) if done else int(stat.group(1)) if stat else 0
    if out.returncode != 0:
        tail = out.stderr[-2000:].strip()
        tally.failures.append(f"atheris exited with {out.returncode}:\n{tail}")
    return tally


def atheris_child(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports():
        from sysboy_tray import protocol  # noqa: F401

    def one_input(data: bytes) -> None:
        if not data:
            return
        mode, frame = data[0], data[1:]
        sender = SENDERS[mode & 1]
        # bit 1 chooses bytes or text (with lone surrogates, as a str may hold)
        check(frame if mode & 2 else frame.decode("utf-8", "surrogateescape"), sender)

    atheris.Setup([sys.argv[0], *argv], one_input)
    atheris.Fuzz()


# -- report ---------------------------------------------------------------------------------


def report(tally: Tally, baseline: float | None = None) -> None:
    ratio = f", {baseline / tally.rate:5.1f}x the cost of a bare json.loads" if baseline else ""
    print(
        f"{tally.name:10s} {tally.cases:8d} cases in {tally.seconds:6.1f} s "
        f"({tally.rate:8.0f}/s), {'?' if tally.accepted is None else tally.accepted} accepted, "
        f"{len(tally.failures)} failure(s){ratio}"
    )
    for failure in tally.failures:
        print(f"  FAIL {failure}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--atheris-child":
        atheris_child(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases per engine")
    parser.add_argument("--seed", type=int, default=7, help="seed of the mutation engine")
    args = parser.parse_args()
    sys.setrecursionlimit(1000)  # the default: deep nesting must be caught, not avoided

    engines: list[tuple[Callable[[], Tally], float | None]] = []
    baseline = bare_json_rate(args.cases, args.seed)
    print(f"baseline: bare json.loads of the mutated frames {baseline:8.0f}/s")
    engines.append((lambda: run_mutation(args.cases, args.seed), baseline))
    engines.append((lambda: run_hypothesis(args.cases), None))
    if atheris_available():
        engines.append((lambda: run_atheris(args.cases), None))
    else:
        print("atheris    not installed: skipped (pip install atheris)")
    failed = 0
    for engine, base in engines:
        tally = engine()
        report(tally, base)
        failed += len(tally.failures) or (tally.cases < args.cases)
    total = "no failure" if not failed else f"{failed} engine(s) failed or ran short"
    print(f"total: {total}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
