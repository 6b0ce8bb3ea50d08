"""Receiving an update: staging, hashes, resume, the switch, the boot counter, the rollback."""

import binascii
import hashlib
import os

import ota
import pointer
import slots
from support import use_device_folder

CHUNK = 2048


def sha(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


def version_files(seed, sizes):
    """Files of a made-up version: name -> bytes, different for each seed."""
    out = {}
    for n, (name, size) in enumerate(sizes):
        out[name] = bytes((seed * 31 + n * 7 + i) % 251 for i in range(size))
    return out


NEW = version_files(2, [("app.mpy", 5000), ("hal/esp32.mpy", 2100), ("link.mpy", 4096)])


def manifest(files):
    return [[name, len(data), sha(data)] for name, data in sorted(files.items())]


def b64(data):
    return binascii.b2a_base64(data).decode().strip()


def send(rx, files, version="0.2.0", stop_after=None, listing=None):
    """Run an update through `rx`; the last status (after `stop_after` chunks, if given)."""
    status = rx.begin(version, listing or manifest(files))
    sent = 0
    while status["state"] == "receiving":
        if stop_after is not None and sent == stop_after:
            return status
        data = files[status["file"]][status["offset"] : status["offset"] + CHUNK]
        status = rx.chunk(status["file"], status["offset"], b64(data))
        sent += 1
    return status


def listing(folder):
    found = []
    for name in sorted(os.listdir(folder)):
        path = folder + "/" + name
        if os.stat(path)[0] & 0x4000:
            found += [name + "/" + inner for inner in listing(path)]
        else:
            found.append(name)
    return found


def fresh():
    folder = use_device_folder("ota")
    slots.state = None
    slots.running = None
    return folder


def test_an_update_lands_in_a_slot_and_starts_on_trial():
    folder = fresh()
    status = send(ota.Receiver(folder), NEW)
    assert status == {"state": "restarting", "version": "0.2.0"}, status
    for name, data in NEW.items():
        with open(folder + "/ota/a/" + name, "rb") as f:
            assert f.read() == data
    assert pointer.boot(folder) == folder + "/ota/a"
    assert slots.running == "0.2.0" and slots.on_trial()
    assert slots.note() == {"state": "confirmed", "version": "0.2.0"}
    slots.noted(folder)
    assert not slots.on_trial() and slots.note() is None
    assert pointer.read(folder)["previous"] == ""  # the root's version stays as it was


def test_each_chunk_is_acknowledged_with_the_next_byte_wanted():
    rx = ota.Receiver(fresh())
    status = rx.begin("0.2.0", manifest(NEW))
    assert status == {"state": "receiving", "file": "app.mpy", "offset": 0}
    status = rx.chunk("app.mpy", 0, b64(NEW["app.mpy"][:CHUNK]))
    assert status == {"state": "receiving", "file": "app.mpy", "offset": CHUNK}
    # a repeated chunk writes nothing and says where to go on
    assert rx.chunk("app.mpy", 0, b64(NEW["app.mpy"][:CHUNK])) == status


def test_a_wrong_hash_is_refused_and_nothing_switches():
    folder = fresh()
    bad = manifest(NEW)
    bad[1][2] = sha(b"something else")
    status = send(ota.Receiver(folder), NEW, listing=bad)
    assert status["state"] == "refused"
    assert "hal/esp32.mpy does not match its SHA-256" in status["reason"], status
    assert pointer.read(folder) is None  # the running version stays
    assert listing(folder + "/ota") == []  # the staged files are gone


def test_a_cut_transfer_resumes_where_it_stopped():
    folder = fresh()
    first = send(ota.Receiver(folder), NEW, stop_after=3)
    assert first == {"state": "receiving", "file": "hal/esp32.mpy", "offset": 0}, first
    again = ota.Receiver(folder).begin("0.2.0", manifest(NEW))
    assert again == first  # the files already whole are kept
    # a file cut in the middle resumes at its size
    os.mkdir(folder + "/ota/a/hal")
    with open(folder + "/ota/a/hal/esp32.mpy", "wb") as f:
        f.write(NEW["hal/esp32.mpy"][:1000])
    rx = ota.Receiver(folder)
    assert rx.begin("0.2.0", manifest(NEW))["offset"] == 1000
    assert send(rx, NEW)["state"] == "restarting"


def test_another_manifest_starts_over():
    folder = fresh()
    send(ota.Receiver(folder), NEW, stop_after=3)
    other = version_files(3, [("app.mpy", 300)])
    assert send(ota.Receiver(folder), other, "0.3.0")["state"] == "restarting"
    assert listing(folder + "/ota/a") == ["app.mpy"]


def test_three_failed_starts_roll_back_and_the_pc_is_told():
    folder = fresh()
    send(ota.Receiver(folder), NEW)
    for start in (1, 2, 3):
        assert pointer.boot(folder) == folder + "/ota/a"
        assert pointer.read(folder)["boots"] == start
    assert pointer.boot(folder) is None  # the fourth start: the previous version, the root's
    assert not slots.on_trial()
    assert slots.note() == {
        "state": "rolled_back",
        "version": "0.2.0",
        "reason": "it did not start 3 times in a row",
    }
    slots.noted(folder)
    assert pointer.boot(folder) is None and slots.note() is None


def test_a_version_that_never_links_rolls_back_to_the_slot_before_it():
    folder = fresh()
    send(ota.Receiver(folder), NEW)
    pointer.boot(folder)
    slots.noted(folder)  # 0.2.0 linked: confirmed, in slot a
    newer = version_files(4, [("app.mpy", 100)])
    assert send(ota.Receiver(folder), newer, "0.3.0")["state"] == "restarting"
    assert pointer.boot(folder) == folder + "/ota/b"
    assert slots.roll_back("it did not link to the PC within 3 min", folder)
    assert pointer.boot(folder) == folder + "/ota/a" and slots.running == "0.2.0"
    assert slots.note()["reason"] == "it did not link to the PC within 3 min"


def test_no_update_while_a_new_version_is_on_trial():
    folder = fresh()
    send(ota.Receiver(folder), NEW)
    pointer.boot(folder)
    status = ota.Receiver(folder).begin("0.3.0", manifest(NEW))
    assert status == {"state": "refused", "reason": "the running version is still on trial"}


def test_a_chunk_without_a_manifest_is_refused():
    folder = fresh()
    status = ota.Receiver(folder).chunk("app.mpy", 0, b64(b"x"))
    assert status["state"] == "refused"
    assert listing(folder) == []


def test_a_chunk_past_the_end_abandons_the_update():
    folder = fresh()
    rx = ota.Receiver(folder)
    rx.begin("0.2.0", manifest({"app.mpy": b"short"}))
    status = rx.chunk("app.mpy", 0, b64(b"far too long for it"))
    assert status["state"] == "refused" and "runs past its size" in status["reason"]
    assert pointer.read(folder) is None
