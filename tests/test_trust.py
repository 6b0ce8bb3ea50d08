"""HMAC-SHA256 on both sides: the golden vectors are CPython's `hmac`, and both proofs agree."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysboy_tray import protocol
from tests.firmware.upy import FIRMWARE

VECTORS = json.loads((Path(__file__).parent / "vectors" / "hmac.json").read_text("utf-8"))


def _firmware_trust() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fw_trust", FIRMWARE / "trust.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fw = _firmware_trust()


@pytest.mark.parametrize("case", VECTORS["hmac"], ids=lambda c: c["name"])
def test_vectors_are_what_cpython_hmac_computes(case: dict[str, Any]) -> None:
    key, msg = bytes.fromhex(case["key"]), bytes.fromhex(case["msg"])
    assert hmac.new(key, msg, hashlib.sha256).hexdigest().startswith(case["mac"])
    assert fw.hmac_sha256(key, msg).hex().startswith(case["mac"])


def test_rfc_4231_cases_are_all_there() -> None:
    names = {c["name"].split(" (")[0] for c in VECTORS["hmac"]}
    assert {f"RFC 4231 case {n}" for n in range(1, 8)} <= names


@settings(deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=300))
def test_firmware_hmac_is_cpythons(key: bytes, msg: bytes) -> None:
    assert fw.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


@pytest.mark.parametrize("case", VECTORS["proofs"])
def test_both_sides_compute_the_same_proofs(case: dict[str, str]) -> None:
    args = (case["key"], case["device_nonce"], case["pc_nonce"], case["device_id"], case["pc_id"])
    assert protocol.pc_proof(*args) == fw.pc_proof(*args) == case["pc_proof"]
    assert protocol.device_proof(*args) == fw.device_proof(*args) == case["device_proof"]


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64), st.integers(0, 63))
def test_compares_refuse_any_changed_digit(proof: str, where: int) -> None:
    changed = proof[:where] + ("0" if proof[where] != "0" else "1") + proof[where + 1 :]
    assert protocol.same_proof(proof, proof) and fw.equal(proof, proof)
    assert not protocol.same_proof(changed, proof)
    assert not fw.equal(changed, proof)
