"""Find the PC: one-shot mDNS legacy-unicast PTR query for _sysboy._tcp.local (RFC 6762 6.7).

The query leaves from an ephemeral UDP port: the ESP32's own mDNS responder holds 5353.
"""

import asyncio
import os
import socket

import dns
from micropython import const

_SERVICE = const("_sysboy._tcp.local")
_MDNS_GROUP = const("224.0.0.251")
_MDNS_PORT = const(5353)
# DNS record types (dns.py's)
_TYPE_A = const(1)
_TYPE_PTR = const(12)
_TYPE_TXT = const(16)
_TYPE_SRV = const(33)
_DEFAULT_PATH = const("/device")
_POLL_S = const(0.02)


class Retry:
    """Waits between discovery rounds: 1, 2, 4, ... seconds, capped at 30."""

    def __init__(self, first=1, cap=30):
        self.first = first
        self.cap = cap
        self.delay = 0

    def next(self):
        """Seconds to wait before the next round."""
        self.delay = self.first if not self.delay else min(self.cap, self.delay * 2)
        return self.delay

    def reset(self):
        """Start again at the first wait."""
        self.delay = 0


def _target(mdns_addr):
    """(address, port) from "a.b.c.d" or "a.b.c.d:port"; env SYSBOY_MDNS_ADDR by default."""
    if not mdns_addr:
        getenv = getattr(os, "getenv", None)  # the ESP32's os has no environment
        mdns_addr = (getenv and getenv("SYSBOY_MDNS_ADDR")) or _MDNS_GROUP
    host, sep, port = mdns_addr.partition(":")
    return host, int(port) if sep else _MDNS_PORT


def _same_subnet(a, b):
    return a.split(".")[:3] == b.split(".")[:3]


def _txt(strings):
    fields = {}
    for raw in strings:
        key, sep, value = raw.partition(b"=")
        if sep:
            try:
                fields[str(key, "utf-8").lower()] = str(value, "utf-8")
            except ValueError:
                pass
    return fields


def pick_server(msg, own_ip=None, sender_ip=None, server_id=None):
    """The best server in a parsed reply, as {host, port, path, id, name}, or None.

    With `server_id`, only the PC advertising that id counts.
    """
    records = msg["answers"] + msg["additional"]
    service = _SERVICE.lower()
    instances = [r["data"] for r in records if r["type"] == _TYPE_PTR]
    instances = [i for i in instances if i.lower().endswith("." + service)]
    found = []
    for instance in instances:
        key = instance.lower()
        srv = [r["data"] for r in records if r["type"] == _TYPE_SRV and r["name"].lower() == key]
        if not srv:
            continue
        port, target = srv[0][2], srv[0][3].lower()
        fields = {}
        for r in records:
            if r["type"] == _TYPE_TXT and r["name"].lower() == key:
                fields.update(_txt(r["data"]))
        if fields.get("proto", "2") != "2":
            continue  # a PC speaking another protocol version
        if server_id is not None and fields.get("id") != server_id:
            continue
        addresses = [
            r["data"] for r in records if r["type"] == _TYPE_A and r["name"].lower() == target
        ]
        if not addresses and sender_ip:
            # Only when the answer names no address: a router relaying mDNS between
            # subnets sends from its own address, while the A record names the PC.
            addresses.append(sender_ip)
        if not addresses or not 0 < port < 65536:
            continue
        found.append(
            {
                "host": addresses[0],
                "port": port,
                "path": fields.get("path") or _DEFAULT_PATH,
                "id": fields.get("id", ""),
                "name": instance[: -len(service) - 1],
                "_all": addresses,
            }
        )
    if not found:
        return None
    best = found[0]
    if own_ip:
        # Prefer an address this device can reach directly on its own /24.
        for server in found:
            for address in server["_all"]:
                if _same_subnet(address, own_ip):
                    best = server
                    best["host"] = address
                    break
            else:
                continue
            break
    del best["_all"]
    return best


def _query_id():
    raw = os.urandom(2)
    return (raw[0] << 8) | raw[1]


def _receive(sock):
    """One datagram and its sender's address, or None when nothing is waiting."""
    try:
        data, peer = sock.recvfrom(1500)
    except OSError:
        return None
    if isinstance(peer, tuple):
        return data, peer[0]
    # MicroPython gives a raw sockaddr: family (2 bytes), port (2), IPv4 (4).
    return data, f"{peer[4]}.{peer[5]}.{peer[6]}.{peer[7]}"


async def find_server(own_ip=None, mdns_addr=None, timeout=2, server_id=None, skip=()):
    """Ask once for _sysboy._tcp.local; the first usable answer within `timeout` s, or None.

    Returns {"host", "port", "path", "id", "name"}. `mdns_addr` (or env SYSBOY_MDNS_ADDR)
    overrides 224.0.0.251 and may carry ":port". With `server_id`, only that PC counts;
    answers naming a "host:port" in `skip` (they failed the handshake) are passed over.
    A malformed reply counts as no reply.
    """
    host, port = _target(mdns_addr)
    address = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
    qid = _query_id()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        # No bind: the system picks an ephemeral port, which makes this a legacy query.
        sock.sendto(dns.build_query(qid, _SERVICE, _TYPE_PTR), address)
        waited = 0.0
        while waited < timeout:
            got = _receive(sock)
            if got is None:
                await asyncio.sleep(_POLL_S)
                waited += _POLL_S
                continue
            server = _answer(got[0], got[1], qid, own_ip, server_id)
            if server is not None and "%s:%d" % (server["host"], server["port"]) not in skip:
                return server
            await asyncio.sleep(0)  # a flood of stray datagrams must not starve the loop
    finally:
        sock.close()
    return None


def _answer(data, sender_ip, qid, own_ip, server_id):
    try:
        msg = dns.parse(data)
    except dns.DNSError:
        return None
    # Only a response (QR set) to this very query counts.
    if msg["id"] != qid or not msg["flags"] & 0x8000:
        return None
    return pick_server(msg, own_ip, sender_ip, server_id)
