"""Update mode (updating.py): each step of an update answered, the new version switched to
at the end, a refusal or silence back to linked mode, and the same hello as linked mode."""

import app
import config
import hal
import handshake
import notes
import pointer
import protocol
import slots
import supervisor
import updating
from support import UPDATE_DATA, Socket, chunk_frame, update_frame, use_device_folder

WHERE = {"host": "192.168.1.20", "port": 8765, "path": "/device"}
GIVE_UP_S = 120  # updating.py's private constant


def fresh():
    folder = use_device_folder("updating")
    slots.state = slots.running = None
    return folder, updating.Updating(config.defaults(), WHERE)


async def restarts(step):
    """True when `step` restarts the board (the simulator's reset leaves by SystemExit)."""
    try:
        await step
    except SystemExit:
        return True
    return False


async def test_each_step_is_answered_and_the_last_restarts_into_the_new_version():
    folder, up = fresh()
    ws = Socket()
    await up.on_message(ws, update_frame())
    await up.on_message(ws, chunk_frame(0, 2048))
    assert ws.sent == [
        {"type": "update_status", "state": "receiving", "file": "app.mpy", "offset": 0},
        {"type": "update_status", "state": "receiving", "file": "app.mpy", "offset": 2048},
    ]
    assert ws.closed is None
    assert await restarts(up.on_message(ws, chunk_frame(2048, 512)))
    assert ws.sent[-1] == {"type": "update_status", "state": "restarting", "version": "0.2.0"}
    assert ws.closed == 1001
    with open(folder + "/ota/a/app.mpy", "rb") as f:
        assert f.read() == UPDATE_DATA
    now = pointer.read(folder)
    assert now["slot"] == "a" and now["version"] == "0.2.0" and now["trial"]
    for msg in ws.sent:
        assert protocol.decode(protocol.encode(msg), "device") == msg


async def test_a_refused_update_restarts_into_linked_mode_with_nothing_switched():
    folder, up = fresh()
    ws = Socket()
    await up.on_message(ws, update_frame(b"other bytes" * 10))  # the hash will not match
    await up.on_message(ws, chunk_frame(0, 2048))
    assert not await restarts(up.on_message(ws, chunk_frame(0, 2048)))  # a repeat: no harm
    assert await restarts(up.on_message(ws, chunk_frame(2048, 512)))
    assert ws.sent[-1] == {
        "type": "update_status",
        "state": "refused",
        "reason": "app.mpy does not match its SHA-256 in the manifest",
    }
    assert ws.closed == 1001
    assert pointer.read(folder) is None  # the running version stays
    assert notes.update_asked(folder) is None  # the next start is linked


async def test_samples_and_commands_wait_for_linked_mode_and_bad_frames_get_an_error():
    _folder, up = fresh()
    ws = Socket()
    await up.on_message(ws, protocol.encode({"type": "vram", "value": 40.0}))
    await up.on_message(ws, protocol.encode({"type": "park", "reason": "idle"}))
    await up.on_message(ws, protocol.encode({"type": "error", "reason": "busy"}))
    assert ws.sent == []
    await up.on_message(ws, '{"type": "chunk", "file": "../x", "offset": 0, "data": "AAAA"}')
    assert [m["type"] for m in ws.sent] == ["error"]
    assert "file" in ws.sent[0]["reason"]
    for output, _ in up.outputs:
        assert output.fraction == 0.0  # the needles rest


async def test_the_hello_says_what_linked_mode_says():
    _folder, up = fresh()
    cfg = config.with_needle(
        config.defaults(), 1, calibration=[[0.0, 0.0], [50.0, 0.7], [100.0, 1.0]]
    )
    cfg["needles"] = cfg["needles"] + [config.needle(26, "dac")]
    cfg["key"], cfg["pc"], cfg["name"] = "k" * 43 + "=", "pc1", "desk"
    up = updating.Updating(cfg, WHERE)
    dev = supervisor.Device(cfg)
    assert handshake.hello(up, "0" * 32) == handshake.hello(dev.link, "0" * 32)
    assert len(handshake.hello(up, "0" * 32)["needles"]) == 2


async def test_no_step_for_two_minutes_restarts_into_linked_mode():
    _folder, up = fresh()
    up.progress = hal.ticks_ms() - (GIVE_UP_S + 1) * 1000
    assert await restarts(updating._watch(up))


def test_the_start_sees_the_note_linked_mode_leaves():
    fresh()
    assert not app._update_noted()
    notes.ask_update(WHERE)
    assert app._update_noted()  # so the start leaves the supervisor out of update mode
    assert notes.update_asked() == WHERE
    assert not app._update_noted()
