"""Updates through the link: only on a proven link, never while calibrating; a manifest
restarts the board into update mode (updating.py takes the files)."""

import os

import config
import handshake
import notes
import ota
import pointer
import slots
import supervisor
from support import Socket, chunk_frame, update_frame, use_device_folder


def fresh():
    folder = use_device_folder("link-update")
    slots.state = slots.running = None
    return folder, supervisor.Device(config.defaults())


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


async def test_a_manifest_restarts_the_board_into_update_mode_to_take_it():
    folder, dev = fresh()
    dev.link.proven = True
    dev.link.endpoint = {"host": "192.168.1.20", "port": 8765, "path": "/device"}
    dev.needle.show(60.0)
    ws = Socket()
    await dev.link.on_message(ws, chunk_frame(0, 2048))  # no manifest yet: nothing to take
    assert ws.sent == [
        {
            "type": "update_status",
            "state": "refused",
            "reason": "no update under way: its manifest comes first",
        }
    ]
    try:
        await dev.link.on_message(ws, update_frame())
        raise AssertionError("the board did not restart")
    except SystemExit:  # the simulator's reset
        pass
    assert ws.closed == 1012  # the PC sends the manifest again once the meter links again
    assert len(ws.sent) == 1  # no status: the transfer starts in update mode
    assert dev.needle.target == 0.0  # parked before the restart
    assert notes.update_asked(folder) == dev.link.endpoint
    assert notes.update_asked(folder) is None  # taken once: a failed update mode comes back linked
    assert os.listdir(folder) == []  # nothing of the update written in linked mode


async def test_no_restart_for_an_update_the_flash_cannot_note():
    folder, dev = fresh()
    dev.link.proven = True
    dev.link.endpoint = {"host": "192.168.1.20", "port": 8765, "path": "/device"}
    os.mkdir(folder + "/update.txt.tmp")  # the note's temporary file cannot be written
    ws = Socket()
    await dev.link.on_message(ws, update_frame())  # no SystemExit: the board stays linked
    assert ws.sent == [
        {
            "type": "update_status",
            "state": "refused",
            "reason": "the meter could not note the update on its flash",
        }
    ]
    assert ws.closed is None
    assert notes.update_asked(folder) is None


async def test_no_update_mode_while_the_running_version_is_on_trial():
    folder, dev = fresh()
    ota.switch("a", "0.2.0", folder)
    pointer.boot(folder)
    assert slots.on_trial()
    dev.link._proven = True  # proven, but its note not yet sent (it confirms the version)
    dev.link.endpoint = {"host": "192.168.1.20", "port": 8765, "path": "/device"}
    ws = Socket()
    await dev.link.on_message(ws, update_frame())
    assert ws.sent[-1] == {
        "type": "update_status",
        "state": "refused",
        "reason": "the running version is still on trial",
    }
    assert notes.update_asked(folder) is None


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
