"""HMAC-SHA256 and the handshake's proofs against golden vectors made with CPython's hmac."""

import binascii
import json

import trust
from support import repo_root


def _vectors():
    with open(repo_root() + "/tests/vectors/hmac.json") as f:
        return json.load(f)


VECTORS = _vectors()


def test_hmac_matches_the_golden_vectors_and_rfc_4231():
    assert len(VECTORS["hmac"]) >= 10
    for case in VECTORS["hmac"]:
        key = binascii.unhexlify(case["key"])
        msg = binascii.unhexlify(case["msg"])
        got = binascii.hexlify(trust.hmac_sha256(key, msg)).decode()
        assert got.startswith(case["mac"]), case["name"] + ": " + got


def test_proofs_match_the_golden_vectors():
    for case in VECTORS["proofs"]:
        args = (
            case["key"],
            case["device_nonce"],
            case["pc_nonce"],
            case["device_id"],
            case["pc_id"],
        )
        assert trust.pc_proof(*args) == case["pc_proof"]
        assert trust.device_proof(*args) == case["device_proof"]
        assert trust.pc_proof(*args) != trust.device_proof(*args)


def test_equal_compares_whole_strings():
    a = "0123456789abcdef" * 4
    assert trust.equal(a, a)
    assert not trust.equal(a, a[:-1] + "0")
    assert not trust.equal(a, "1" + a[1:])
    assert not trust.equal(a, a[:-1])
    assert trust.equal("", "")


def test_nonces_are_fresh_lowercase_hex():
    seen = set()
    for _ in range(20):
        n = trust.nonce()
        assert len(n) == 32 and all(c in "0123456789abcdef" for c in n), n
        seen.add(n)
    assert len(seen) == 20
