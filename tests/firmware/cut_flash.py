"""For MicroPython programs: a RAM flash that records its writes, and the flash a power cut
after any of them (or in the middle of one) would leave.

Used by config_power_cut.py and update_power_cut.py, which run on the unix port with its
own VfsLfs2 (the ESP32's default file system) and VfsFat.
"""

# the ESP32 runs littlefs on 4096-byte flash sectors; the unix port's FAT wants 512
BLOCK_SIZE = {"lfs2": 4096, "fat": 512}


class Flash:
    """A RAM flash; while `log` is a list, every write and erase is recorded in it as
    (tag, offset, bytes), `tag` being what `self.tag` held at the time."""

    def __init__(self, image, block_size):
        self.image = image
        self.block_size = block_size
        self.log = None
        self.tag = None

    def readblocks(self, block, buf, off=0):
        at = block * self.block_size + off
        buf[:] = self.image[at : at + len(buf)]

    def writeblocks(self, block, buf, off=None):
        at = block * self.block_size + (off or 0)
        if self.log is not None:
            self.log.append((self.tag, at, bytes(buf)))
        self.image[at : at + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return len(self.image) // self.block_size
        if op == 5:  # block size
            return self.block_size
        if op == 6:  # erase: flash erases to 0xFF
            at = arg * self.block_size
            if self.log is not None:
                self.log.append((self.tag, at, b"\xff" * self.block_size))
            self.image[at : at + self.block_size] = b"\xff" * self.block_size
            return 0
        return None


def formatted(kind, blocks):
    """A fresh flash of `blocks` blocks, formatted with `kind` (lfs2 or fat)."""
    import vfs  # MicroPython's; imported here so that CPython can load the rest

    flash = Flash(bytearray(BLOCK_SIZE[kind] * blocks), BLOCK_SIZE[kind])
    (vfs.VfsLfs2 if kind == "lfs2" else vfs.VfsFat).mkfs(flash)
    return flash


def mount(kind, flash, root):
    import vfs

    vfs.mount((vfs.VfsLfs2 if kind == "lfs2" else vfs.VfsFat)(flash), root)


def cuts(before, log):
    """Each power cut of a recorded run: (n, torn, image), the flash as it is left when the
    power goes after `n` writes, `torn` when the write in flight lands only half."""
    for n in range(len(log) + 1):
        for torn in (False, True):
            if torn and n == len(log):
                continue
            image = bytearray(before)
            for _tag, at, data in log[:n]:
                image[at : at + len(data)] = data
            if torn:
                _tag, at, data = log[n]
                image[at : at + len(data) // 2] = data[: len(data) // 2]
            yield n, torn, image
