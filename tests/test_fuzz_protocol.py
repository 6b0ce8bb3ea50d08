"""A short run of the protocol fuzzer (bench/fuzz_protocol.py runs 100,000 cases per engine)."""

from __future__ import annotations

import pytest

from bench import fuzz_protocol
from sysboy_tray import protocol


def test_mutated_vectors_raise_only_protocol_error() -> None:
    tally = fuzz_protocol.run_mutation(4000, seed=11)
    assert tally.failures == []
    assert tally.cases == 4000
    assert tally.accepted  # some mutants stay valid: the round trip was checked too


def test_hypothesis_frames_raise_only_protocol_error() -> None:
    tally = fuzz_protocol.run_hypothesis(800)
    assert tally.failures == []
    assert tally.cases >= 800


@pytest.mark.skipif(not fuzz_protocol.atheris_available(), reason="atheris is not installed")
def test_coverage_guided_run_finds_nothing() -> None:
    tally = fuzz_protocol.run_atheris(3000, max_seconds=60)
    assert tally.failures == []
    # every case asked for ran (libFuzzer may report a few more: 3,108 were seen once)
    assert tally.cases >= 3000


def test_the_fuzzer_would_catch_a_stray_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: str | bytes, sender: str) -> protocol.Message:
        raise KeyError("value")

    monkeypatch.setattr(protocol, "decode", broken)
    tally = fuzz_protocol.run_mutation(50)
    assert len(tally.failures) == 20  # recorded, up to the cap
    assert "KeyError" in tally.failures[0]
