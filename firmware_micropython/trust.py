"""The pairing key at work: HMAC-SHA256 (RFC 2104) and the handshake's proofs (docs/protocol.md)."""

import binascii
import hashlib
import os

from micropython import const

_BLOCK = const(64)  # SHA-256's block size in bytes


def hmac_sha256(key, msg):
    """HMAC-SHA256 of `msg` under `key` (both bytes), as 32 bytes (RFC 2104)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b):
    """True when strings `a` and `b` are equal; the time taken does not tell where they differ."""
    if len(a) != len(b):
        return False  # a proof's length is public: always 64
    # compared as bytes: indexing a str would intern each character it meets, for good
    a, b = a.encode(), b.encode()
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def nonce():
    """16 fresh random bytes, as 32 lowercase hex digits."""
    return binascii.hexlify(os.urandom(16)).decode()


def _proof(key_hex, label, first, second, device_id, pc_id):
    msg = "\n".join((label, first, second, device_id, pc_id))
    mac = hmac_sha256(binascii.unhexlify(key_hex), msg.encode())
    return binascii.hexlify(mac).decode()


def pc_proof(key_hex, device_nonce, pc_nonce, device_id, pc_id):
    """What the PC sends to show it holds the key (in its hello)."""
    return _proof(key_hex, "sysboy2 pc", device_nonce, pc_nonce, device_id, pc_id)


def device_proof(key_hex, device_nonce, pc_nonce, device_id, pc_id):
    """What the device sends to show it holds the key (its `proof` message)."""
    return _proof(key_hex, "sysboy2 device", pc_nonce, device_nonce, device_id, pc_id)
