"""Updates through the link: only on a proven link, never while calibrating, each answered."""

import binascii
import hashlib
import json
import os

import app
import config
import handshake
import ota
import pointer
import protocol
import slots
from support import use_device_folder

DATA = bytes(range(256)) * 10


class Socket:
    """What the link writes to its PC."""

    def __init__(self):
        self.sent = []
        self.closed = None

    async def send(self, text):
        self.sent.append(json.loads(text))

    async def close(self, code=1000):
        self.closed = code


def update_frame():
    digest = binascii.hexlify(hashlib.sha256(DATA).digest()).decode()
    return json.dumps({"type": "update", "version": "0.2.0", "files": [["app.mpy", 2560, digest]]})


def chunk_frame(offset, size):
    data = binascii.b2a_base64(DATA[offset : offset + size]).decode().strip()
    return protocol.encode({"type": "chunk", "file": "app.mpy", "offset": offset, "data": data})


def fresh():
    folder = use_device_folder("link-update")
    slots.state = slots.running = None
    return folder, app.Device(config.defaults())


async def test_an_update_on_an_unproven_link_is_refused_and_writes_nothing():
    folder, dev = fresh()
    ws = Socket()
    await dev.link.on_message(ws, update_frame())
    await dev.link.on_message(ws, chunk_frame(0, 2048))
    assert [m["state"] for m in ws.sent] == ["refused", "refused"]
    assert ws.sent[0]["reason"] == "updates come only from the paired PC"
    assert os.listdir(folder) == []


async def test_no_update_while_a_needle_is_calibrated():
    folder, dev = fresh()
    dev.link.proven = True
    dev.needle.set_raw(0.5)
    ws = Socket()
    await dev.link.on_message(ws, update_frame())
    assert ws.sent == [
        {"type": "update_status", "state": "refused", "reason": "a needle is being calibrated"}
    ]
    assert os.listdir(folder) == []


async def test_each_chunk_is_answered_with_the_next_byte_wanted():
    _folder, dev = fresh()
    dev.link.proven = True
    ws = Socket()
    await dev.link.on_message(ws, update_frame())
    await dev.link.on_message(ws, chunk_frame(0, 2048))
    assert ws.sent == [
        {"type": "update_status", "state": "receiving", "file": "app.mpy", "offset": 0},
        {"type": "update_status", "state": "receiving", "file": "app.mpy", "offset": 2048},
    ]
    for msg in ws.sent:
        assert protocol.decode(protocol.encode(msg), "device") == msg


async def test_a_confirmed_version_tells_the_pc_once():
    folder, dev = fresh()
    ota.switch("a", "0.2.0", folder)
    os.mkdir(folder + "/ota")
    os.mkdir(folder + "/ota/a")
    pointer.boot(folder)
    assert handshake.hello(dev.link, "0" * 32)["fw"] == "0.2.0"
    ws = Socket()
    dev.link.proven = True  # the handshake passed
    assert not slots.on_trial()  # linked to its PC: confirmed
    await dev.link._send(ws, dev.link._status())
    await dev.link._send(ws, dev.link._status())
    assert ws.sent[0] == {"type": "update_status", "state": "confirmed", "version": "0.2.0"}
    assert [m["type"] for m in ws.sent] == ["update_status", "status", "status"]
    dev.link.proven = False
    dev.link.proven = True  # the next link: nothing more to say
    await dev.link._send(ws, dev.link._status())
    assert [m["type"] for m in ws.sent][3:] == ["status"]


class LostSocket(Socket):
    """A link that ends before anything reaches the PC."""

    async def send(self, text):
        raise OSError("link lost")


async def test_a_rollback_lost_with_its_link_is_told_at_the_next_one():
    folder, dev = fresh()
    was = {"version": "0.2.0", "previous": "", "previous_version": ""}
    pointer.write(folder, pointer.rolled_back(was, "it did not start 3 times in a row"))
    pointer.boot(folder)
    dev.link.proven = True
    try:
        await dev.link._send(LostSocket(), dev.link._status())
    except OSError:
        pass
    assert pointer.read(folder)["told"]["version"] == "0.2.0"  # not forgotten unsent
    dev.link.proven = False
    dev.link.proven = True  # the next link
    ws = Socket()
    await dev.link._send(ws, dev.link._status())
    await dev.link._send(ws, dev.link._status())
    assert ws.sent[0] == {
        "type": "update_status",
        "state": "rolled_back",
        "version": "0.2.0",
        "reason": "it did not start 3 times in a row",
    }
    assert [m["type"] for m in ws.sent] == ["update_status", "status", "status"]
    assert "told" not in pointer.read(folder)  # told once: forgotten now
    dev.link.proven = False
    dev.link.proven = True
    await dev.link._send(ws, dev.link._status())
    assert [m["type"] for m in ws.sent][3:] == ["status"]
