"""Receiving a firmware update over the proven link (docs/protocol.md, "Firmware updates").

The manifest (`update`) names each file with its size and SHA-256. The files are written
into the slot that is not running (pointer.py), chunk by chunk, each chunk acknowledged with
the next byte wanted. A file is checked against its hash as soon as it is whole, by
reading it back from the flash in small pieces (the heap holds one piece, never a file).
When every file is whole and right, one rename switches to the new version.

An interrupted transfer resumes: `stage.json` names the manifest being written, and the
same manifest again finds the files already whole and the size of the one cut short.
(A cut while stage.json itself is written leaves it unreadable: the transfer then starts
over, which is safe.) The manifest is kept compact while the files come: a digest is 32
bytes in one buffer, not a 64-character string in a list per file.
"""

import binascii
import hashlib
import json
import os

import pointer
import slots
from micropython import const

STAGE = "stage.json"
_READ_BYTES = const(512)  # the piece read back for hashing
_MAX_FILES = const(40)


def remove(name):
    """Remove file `name` if it is there."""
    try:
        os.remove(name)
    except OSError:
        pass


def _read_json(name):
    try:
        with open(name) as f:
            value = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _is_dir(name):
    try:
        return os.stat(name)[0] & 0x4000 != 0
    except OSError:
        return False


def _size(name):
    try:
        return os.stat(name)[6]
    except OSError:
        return -1


def _wipe(name):
    """Remove folder `name` and everything in it."""
    if not _is_dir(name):
        remove(name)
        return
    for entry in os.listdir(name):
        _wipe(name + "/" + entry)
    os.rmdir(name)


def _makedirs(name):
    """Make folder `name` and any folder above it that is missing."""
    parts = name.split("/")
    so_far = parts[0]
    for part in parts[1:]:
        if so_far and not _is_dir(so_far):
            os.mkdir(so_far)
        so_far += "/" + part
    if so_far and not _is_dir(so_far):
        os.mkdir(so_far)


def file_sha256(name, size):
    """SHA-256 (32 bytes) of the first `size` bytes of file `name`, read a piece at a time."""
    digest = hashlib.sha256()
    buf = bytearray(_READ_BYTES)
    view = memoryview(buf)
    left = size
    with open(name, "rb") as f:
        while left > 0:
            n = f.readinto(buf)
            if not n:
                break
            n = min(n, left)
            digest.update(view[:n])
            left -= n
    return digest.digest()


def manifest_digest(version, files):
    """One hash naming a manifest, so a resumed transfer knows it is the same one."""
    digest = hashlib.sha256(version.encode())
    for name, size, sha in files:
        digest.update(("\n%s %d %s" % (name, size, sha)).encode())
    return binascii.hexlify(digest.digest()).decode()


def _free_bytes(folder):
    statvfs = getattr(os, "statvfs", None)
    if statvfs is None:
        return None
    try:
        st = statvfs(folder or "/")
    except OSError:
        return None
    return st[0] * st[4]


def _refused(reason):
    return {"state": "refused", "reason": reason}


class Receiver:
    """One update being received; `begin` takes the manifest, `chunk` each piece of a file."""

    def __init__(self, folder=None):
        self.folder = folder  # the flash root (tests: a mounted RAM flash)
        self.names = None  # the files' paths while an update is under way
        self.sizes = None
        self.digests = None  # their SHA-256s, 32 bytes each, end to end
        self.version = None
        self.base = None  # the slot folder being written
        self.slot = None
        self.index = 0  # the file being received
        self.offset = 0  # the next byte of it

    def begin(self, version, files):
        """Take a manifest ([name, size, sha256 hex] per file); the status to answer: where
        to start, or why not."""
        self.names = None
        now = pointer.read(self.folder)
        if now is not None and now.get("trial"):
            return _refused("the running version is still on trial")
        slot = "b" if now is not None and now["slot"] == "a" else "a"
        base = pointer.path(self.folder, pointer.FOLDER, slot)
        stage_name = pointer.path(self.folder, pointer.FOLDER, STAGE)
        digest = manifest_digest(version, files)
        stage = _read_json(stage_name)
        resuming = stage is not None and stage.get("digest") == digest and stage.get("slot") == slot
        if not resuming:
            _wipe(base)
            _makedirs(pointer.path(self.folder, pointer.FOLDER))
            free = _free_bytes(pointer.path(self.folder, pointer.FOLDER))
            need = sum(one[1] for one in files)
            if free is not None and free < need + 8192:  # room for the file system's own
                why = "not enough room on the flash: %d bytes free, %d needed" % (free, need)
                return _refused(why)
            os.mkdir(base)
            with open(stage_name, "w") as f:
                f.write(json.dumps({"slot": slot, "version": version, "digest": digest}))
        self.names = [one[0] for one in files]
        self.sizes = [one[1] for one in files]
        self.digests = b"".join(binascii.unhexlify(one[2]) for one in files)
        self.version, self.base, self.slot = version, base, slot
        self.index, self.offset = self._first_gap()
        if self.index == len(self.names):
            return self._install()
        return self._wanted()

    def _right(self, index, target):
        """True when file `target` holds file `index`'s bytes, as the manifest says."""
        at = index * 32
        return file_sha256(target, self.sizes[index]) == self.digests[at : at + 32]

    def _first_gap(self):
        """The first file (index, offset) not yet whole and right on the flash; a file
        whose bytes are wrong is started again."""
        for index in range(len(self.names)):
            target = self.base + "/" + self.names[index]
            have = _size(target)
            size = self.sizes[index]
            if have == size and self._right(index, target):
                continue
            if have < 0 or have >= size:  # missing, or whole but wrong: from the start
                remove(target)
                have = 0
            return index, have
        return len(self.names), 0

    def _wanted(self):
        return {"state": "receiving", "file": self.names[self.index], "offset": self.offset}

    def chunk(self, name, offset, data):
        """Write one piece (base64 `data`) of file `name` at `offset`; the status to answer."""
        if self.names is None:
            return _refused("no update under way: its manifest comes first")
        if name != self.names[self.index] or offset != self.offset:
            return self._wanted()  # a repeat or a gap: the PC carries on from here
        size = self.sizes[self.index]
        try:
            raw = binascii.a2b_base64(data)
        except ValueError:
            return self._abandon("a chunk of %s is not base64" % name)
        if not raw or offset + len(raw) > size:
            return self._abandon("a chunk of %s runs past its size in the manifest" % name)
        target = self.base + "/" + name
        if offset == 0:
            _makedirs(target.rsplit("/", 1)[0])
        written = len(raw)
        with open(target, "ab") as f:
            f.write(raw)
        raw = None
        self.offset = _size(target)
        if self.offset != offset + written:
            return self._abandon("%s did not write whole to the flash" % name)
        if self.offset < size:
            return self._wanted()
        if not self._right(self.index, target):
            return self._abandon("%s does not match its SHA-256 in the manifest" % name)
        self.index += 1
        self.offset = 0
        if self.index < len(self.names):
            return self._wanted()
        return self._install()

    def _abandon(self, reason):
        """Drop the staged files: the running version stays, and the PC hears why."""
        self.names = None
        remove(pointer.path(self.folder, pointer.FOLDER, STAGE))
        try:
            _wipe(self.base)
        except OSError:
            pass  # the next update wipes it
        return _refused(reason)

    def _install(self):
        """Every file whole and right: switch to the new version at the next start."""
        index, _offset = self._first_gap()  # read back once more: the flash, not our memory
        if index != len(self.names):
            return self._abandon("%s changed on the flash" % self.names[index])
        switch(self.slot, self.version, self.folder)
        remove(pointer.path(self.folder, pointer.FOLDER, STAGE))
        self.names = None
        return {"state": "restarting", "version": self.version}


def switch(slot, version, folder=None):
    """Start `version`, written whole into `slot`, at the next start: the one atomic step
    (pointer.write: the pointer's older copy is replaced; the newer one stays until then)."""
    now = pointer.read(folder)
    pointer.write(
        folder,
        {
            "slot": slot,
            "version": version,
            "previous": now["slot"] if now else "",
            "previous_version": slots.running
            or (now or {}).get("version")
            or pointer.root_version(folder)
            or "",
            "trial": True,
            "boots": 0,
        },
    )
