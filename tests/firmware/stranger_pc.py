"""A stranger on the LAN playing the meter's PC without its key: what it sends, and the program
that runs it in a network namespace of its own.

    python -m tests.firmware.stranger_pc ADDRESS PC_ID PORT

answers every mDNS query for the PC's service at once, naming ADDRESS:PORT and copying the
real PC's id (PC_ID, public in its advert), and serves a WebSocket there that speaks protocol
v2 but cannot prove the key: a forged proof, its own key offered as a pairing, then everything
a v1 attacker did. It prints `ready`, `answered <ip>`, `hello <json>`, `frame <json>` for
anything more the meter says, and `closed <code> <frames sent>` per connection.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
import sys
import threading
from typing import Any

from sysboy_tray import SERVICE_TYPE, protocol

NESTED = '{"type": "cpu", "value": ' + "[" * 1900 + "]" * 1900 + "}"  # 3.8 KB, one frame
MDNS_GROUP = "224.0.0.251"
MDNS_PORT = 5353


def barrage() -> list[str]:
    """Everything a v1 attacker sent, in frames, most of them a change the meter would save:
    a calibration of 100 % -> 0.03, a 5,000 ms smoothing, a 3,600 s idle park, a flood of
    calibrations, raw mode slammed between 0 and 1.0, samples, and a frame of nested lists."""
    frames: list[dict[str, Any]] = [
        {"type": "calibration", "points": [[0, 0], [100, 0.03]]},
        {"type": "settings", "smoothing_ms": 5000},
        {"type": "settings", "idle_park_s": 3600},
    ]
    frames += [
        {"type": "calibration", "points": [[0, 0], [100, 0.03 + (i % 50) / 100]]}
        for i in range(300)
    ]
    frames += [{"type": "needle", "value": float(i % 2)} for i in range(60)]
    frames += [{"type": "cpu", "value": 100}, {"type": "vram", "value": 100, "needle": 1}]
    return [json.dumps(f) for f in frames] + [NESTED]


def hello(pc_id: str, nonce: str | None = None, proof: str | None = None) -> str:
    """A PC's hello that claims to be the meter's own PC (its id is in every advert)."""
    message: dict[str, Any] = {
        "type": "hello",
        "proto": 2,
        "server": "Desk PC",
        "pc": pc_id,
        "nonce": nonce or secrets.token_hex(16),
        "paired": True,
    }
    if proof is not None:
        message["proof"] = proof
    return json.dumps(message)


def forged(device_hello: dict[str, Any], pc_id: str) -> list[str]:
    """A proof under a guessed key, then the stranger's own key offered as a new pairing."""
    nonce = secrets.token_hex(16)
    guess = secrets.token_hex(32)
    proof = protocol.pc_proof(guess, device_hello["nonce"], nonce, device_hello["id"], pc_id)
    offer = {"type": "pair", "key": secrets.token_hex(32), "pc": "evil-pc"}
    return [hello(pc_id, nonce, proof), json.dumps(offer)]


def mdns_answer(query: bytes, address: str, port: int, pc_id: str) -> bytes | None:
    """The answer to a PTR query for the PC's service, naming `address`:`port`; else None."""
    import dns.flags
    import dns.message
    import dns.rdatatype
    import dns.rrset

    try:
        msg = dns.message.from_wire(query)
    except Exception:  # anything on the network: not a query we answer
        return None
    if msg.flags & dns.flags.QR or not any(
        q.rdtype == dns.rdatatype.PTR and q.name.to_text().lower() == SERVICE_TYPE.lower()
        for q in msg.question
    ):
        return None
    instance = "Desk\\ PC." + SERVICE_TYPE
    host = "desk-pc.local."
    reply = dns.message.make_response(msg)
    reply.flags |= dns.flags.AA
    reply.answer.append(dns.rrset.from_text(SERVICE_TYPE, 120, "IN", "PTR", instance))
    reply.additional.append(dns.rrset.from_text(instance, 120, "IN", "SRV", f"0 0 {port} {host}"))
    txt = f'"proto=2" "path=/device" "id={pc_id}"'
    reply.additional.append(dns.rrset.from_text(instance, 120, "IN", "TXT", txt))
    reply.additional.append(dns.rrset.from_text(host, 120, "IN", "A", address))
    wire: bytes = reply.to_wire()
    return wire


def say(*words: object) -> None:
    print(*words, flush=True)


def answer_queries(address: str, port: int, pc_id: str) -> None:
    """Answer every query for the service on the mDNS group, at once, straight to the asker.

    The answer is made once; each query only has its id copied in, so the stranger answers
    within microseconds, as a dedicated attacker would."""
    import dns.message
    import dns.rdatatype

    probe = dns.message.make_query(SERVICE_TYPE, dns.rdatatype.PTR).to_wire()
    template = mdns_answer(probe, address, port, pc_id)
    assert template is not None
    wanted = probe[12:].lower()  # the question: name, type PTR, class IN
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", MDNS_PORT))
    group = struct.pack("4s4s", socket.inet_aton(MDNS_GROUP), socket.inet_aton(address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
    while True:
        data, peer = sock.recvfrom(1500)
        if len(data) > 12 and not data[2] & 0x80 and data[12:].lower().startswith(wanted):
            sock.sendto(data[:2] + template[2:], peer)
            say("answered", peer[0])


async def serve(address: str, port: int, pc_id: str) -> None:
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed

    async def meter(ws: ServerConnection) -> None:
        sent = 0
        try:
            first = await ws.recv()
            say("hello", first)
            for frame in forged(json.loads(first), pc_id) + barrage():
                await ws.send(frame)
                sent += 1
            async for more in ws:
                say("frame", more)
        except ConnectionClosed:
            pass
        received = ws.protocol.close_rcvd
        say("closed", received.code if received is not None else "none", sent)

    async with ws_serve(meter, address, port):
        say("ready")
        await asyncio.Future()


def main() -> None:
    address, pc_id, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    threading.Thread(target=answer_queries, args=(address, port, pc_id), daemon=True).start()
    asyncio.run(serve(address, port, pc_id))


if __name__ == "__main__":
    main()
