"""Receiving a firmware update over the proven link (docs/protocol.md, "Firmware updates").

The manifest (`update`) names each file with its size and SHA-256. The files are written
into the slot that is not running (slots.py), chunk by chunk, each chunk acknowledged with
the next byte wanted. A file is checked against its hash as soon as it is whole, by
reading it back from the flash in small pieces (the heap holds one piece, never a file).
When every file is whole and right, one rename switches to the new version.

An interrupted transfer resumes: `stage.json` names the manifest being written, and the
same manifest again finds the files already whole and the size of the one cut short.
"""

import binascii
import hashlib
import os

import slots

STAGE = "stage.json"
READ_BYTES = 512  # the piece read back for hashing
MAX_FILES = 40


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
        slots.remove(name)
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
    """SHA-256 (hex) of the first `size` bytes of file `name`, read a piece at a time."""
    digest = hashlib.sha256()
    buf = bytearray(READ_BYTES)
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
    return binascii.hexlify(digest.digest()).decode()


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
        self.files = None  # [[name, size, sha256], ...] while an update is under way
        self.version = None
        self.base = None  # the slot folder being written
        self.slot = None
        self.index = 0  # the file being received
        self.offset = 0  # the next byte of it

    def begin(self, version, files):
        """Take a manifest; the status to answer: where to start, or why not."""
        self.files = None
        now = slots.read(self.folder)
        if now is not None and now.get("trial"):
            return _refused("the running version is still on trial")
        slot = "b" if now is not None and now["slot"] == "a" else "a"
        base = slots.slot_folder(self.folder, slot)
        stage_name = slots.path(self.folder, slots.FOLDER, STAGE)
        digest = manifest_digest(version, files)
        stage = slots.read_json(stage_name)
        resuming = stage is not None and stage.get("digest") == digest and stage.get("slot") == slot
        if not resuming:
            _wipe(base)
            _makedirs(slots.path(self.folder, slots.FOLDER))
            free = _free_bytes(slots.path(self.folder, slots.FOLDER))
            need = sum(size for _name, size, _sha in files)
            if free is not None and free < need + 8192:  # room for the file system's own
                return _refused(
                    "not enough room on the flash: %d bytes free, %d needed" % (free, need)
                )
            os.mkdir(base)
            slots.write_json(stage_name, {"slot": slot, "version": version, "digest": digest})
        self.files, self.version, self.base, self.slot = files, version, base, slot
        self.index, self.offset = self._first_gap()
        if self.index == len(files):
            return self._install()
        return self._wanted()

    def _first_gap(self):
        """The first file (index, offset) not yet whole and right on the flash; a file
        whose bytes are wrong is started again."""
        for index in range(len(self.files)):
            name, size, sha = self.files[index]
            target = self.base + "/" + name
            have = _size(target)
            if have == size and file_sha256(target, size) == sha:
                continue
            if have < 0 or have >= size:  # missing, or whole but wrong: from the start
                slots.remove(target)
                have = 0
            return index, have
        return len(self.files), 0

    def _wanted(self):
        name = self.files[self.index][0]
        return {"state": "receiving", "file": name, "offset": self.offset}

    def chunk(self, name, offset, data):
        """Write one piece (base64 `data`) of file `name` at `offset`; the status to answer."""
        if self.files is None:
            return _refused("no update under way: its manifest comes first")
        wanted, size, sha = self.files[self.index]
        if name != wanted or offset != self.offset:
            return self._wanted()  # a repeat or a gap: the PC carries on from here
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
        if file_sha256(target, size) != sha:
            return self._abandon("%s does not match its SHA-256 in the manifest" % name)
        self.index += 1
        self.offset = 0
        if self.index < len(self.files):
            return self._wanted()
        return self._install()

    def _abandon(self, reason):
        """Drop the staged files: the running version stays, and the PC hears why."""
        self.files = None
        slots.remove(slots.path(self.folder, slots.FOLDER, STAGE))
        try:
            _wipe(self.base)
        except OSError:
            pass  # the next update wipes it
        return _refused(reason)

    def _install(self):
        """Every file whole and right: switch to the new version at the next start."""
        index, _offset = self._first_gap()  # read back once more: the flash, not our memory
        if index != len(self.files):
            return self._abandon("%s changed on the flash" % self.files[index][0])
        slots.switch(self.slot, self.version, self.folder)
        slots.remove(slots.path(self.folder, slots.FOLDER, STAGE))
        self.files = None
        return {"state": "restarting", "version": self.version}
