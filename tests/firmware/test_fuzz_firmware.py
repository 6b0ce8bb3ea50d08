"""A short run of the firmware parser fuzzer (bench/fuzz_firmware.py runs 100,000 per target)."""

from __future__ import annotations

import pytest

from bench import firmware_targets as targets
from bench import fuzz_firmware as fuzz
from tests.conftest import scaled

# inputs that once escaped as the wrong exception (or broke a round trip), kept for good
REGRESSIONS = [
    # a portal query whose question points into the header: the reply did not parse back
    ("dns", b"\x25\x00\x03\x00\x00\x00\x01\x01\x00\x00\x00\xff\x00\xc0\x02pc\x05local\x00\x00!"),
    # a close reason cut at 123 bytes inside a character: invalid UTF-8 for the peer
    ("wsframe", b"\x00" + "é".encode() * 100),
    # Content-Length '²': str.isdigit says yes, int() raised ValueError
    ("http", b"\x00POST /join HTTP/1.1\r\nContent-Length: \xc2\xb2\r\n\r\n"),
    ("http", b"\x00GET / HTTP/1.1\r\nContent-Length:\xe1\x8d\xa9\r\n\r\n"),
]


@pytest.mark.parametrize("target", fuzz.TARGETS)
def test_mutated_messages_raise_only_the_documented_error(target: str) -> None:
    tally = fuzz.run_mutation(target, 3000, seed=11)
    assert tally.failures == []
    assert tally.cases == 3000
    assert tally.accepted  # valid inputs went through, and their round trips were checked


@pytest.mark.parametrize("target", fuzz.TARGETS)
def test_hypothesis_cases_raise_only_the_documented_error(target: str) -> None:
    tally = fuzz.run_hypothesis(target, 400)
    assert tally.failures == []
    assert tally.cases >= 400
    assert tally.accepted


@pytest.mark.skipif(not fuzz.atheris_available(), reason="atheris is not installed")
@pytest.mark.parametrize("target", fuzz.TARGETS)
def test_coverage_guided_run_finds_nothing(target: str) -> None:
    tally = fuzz.run_atheris(target, 3000, max_seconds=int(scaled(60)))
    assert tally.failures == []
    # every case asked for ran (libFuzzer may report a few more: 3,108 were seen once)
    assert tally.cases >= 3000


@pytest.mark.parametrize("target", fuzz.TARGETS)
def test_micropython_survives_the_same_inputs(target: str) -> None:
    cases = fuzz.mutation_cases(target, 1500, seed=13)
    cases += [case for name, case in REGRESSIONS if name == target]
    tally = fuzz.run_micropython(target, cases, timeout=scaled(180))
    assert tally.failures == []
    assert tally.cases == len(cases)
    assert tally.accepted


@pytest.mark.parametrize(("target", "case"), REGRESSIONS)
def test_inputs_that_once_escaped_are_handled(target: str, case: bytes) -> None:
    targets.check(target, case)  # raises Crash if it escapes again


def test_the_fuzzer_would_catch_a_stray_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(buf: bytes, ip: str) -> bytes:
        raise KeyError("flags")

    monkeypatch.setattr(fuzz.PORTALDNS, "portal_reply", broken)
    tally = fuzz.run_mutation("dns", 50)
    assert len(tally.failures) == 20  # recorded, up to the cap
    assert "KeyError" in tally.failures[0]


def test_the_fuzzer_would_catch_a_broken_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    http = fuzz.FW["http"]
    monkeypatch.setattr(http, "url_quote", lambda text: text.replace("&", "and"))
    with pytest.raises(targets.Crash, match="round-trip"):
        targets.check("http", b"\x00a=b%26c")
