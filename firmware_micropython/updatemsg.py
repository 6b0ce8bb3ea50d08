"""A firmware update's `update` and `chunk` frames (docs/protocol.md): their decoding, and
linked mode's answer to them. Imported by the protocol module only when one arrives, so the
linked heap does not carry this code."""

from micropython import const

_MAX_UPDATE_FILES = const(40)
_HEX = const("0123456789abcdef")
MAX_FILE_BYTES = 1048576
_CHUNK_B64 = const(2732)  # base64 of 2048 bytes: a chunk's data, well inside a frame
_NAME_CHARS = const("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_VERSION_CHARS = _NAME_CHARS + "+"
_BASE64_CHARS = const("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=")


def decode(kind, obj, out, p):
    """The normal form of an `update` or `chunk` frame, filled into `out`; `p` is the
    protocol module (its checks and its ProtocolError)."""
    if kind == "update":
        out["version"] = p._string(obj, "version", 32, 1, _VERSION_CHARS)
        out["files"] = _update_files(obj.get("files"), p)
        return out
    out["file"] = file_name(obj.get("file"), "file", p)
    out["offset"] = p._number(obj.get("offset"), "offset", 0, MAX_FILE_BYTES, True)
    data = p._string(obj, "data", _CHUNK_B64, 4)
    pad = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    # checked in C, without a copy (a chunk's would cost 2.7 KB of heap): strip() leaves
    # nothing when every character is base64's, and "=" comes only as the padding
    if (
        len(data) % 4
        or data.strip(_BASE64_CHARS)
        or data.find("=") != (len(data) - pad if pad else -1)
    ):
        p._refuse("data", "must be base64")
    out["data"] = data
    return out


def _all_in(text, chars):
    # strip() works in C and leaves nothing when every character is in `chars`: stepping
    # through a str would intern each of its characters, for good
    return not text.strip(chars)


def file_name(value, key, p):
    """A file's path in an update: 1 to 4 plain names joined by "/", none "." or ".."."""
    parts = value.split("/") if isinstance(value, str) else ()
    if not 1 <= len(parts) <= 4:
        p._refuse(key, "must be a file path of up to 4 plain names")
    for part in parts:
        if not 1 <= len(part) <= 32 or not _all_in(part, _NAME_CHARS):
            p._refuse(key, "must be a file path of up to 4 plain names")
    for part in parts:
        if part == "." or part == "..":
            p._refuse(key, "must not climb out of its folder")
    return value


def _update_files(value, p):
    if not isinstance(value, list) or not 1 <= len(value) <= _MAX_UPDATE_FILES:
        p._refuse("files", "must be a list of 1 to %d files" % _MAX_UPDATE_FILES)
    names = []
    for item in value:
        if not isinstance(item, list) or len(item) != 3:
            raise p.ProtocolError("each entry of 'files' is [name, size, sha256]")
        size = item[1]
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FILE_BYTES:
            raise p.ProtocolError("a file's size must be 1 to %d bytes" % MAX_FILE_BYTES)
        digest = item[2]
        if not isinstance(digest, str) or len(digest) != 64 or not _all_in(digest, _HEX):
            raise p.ProtocolError("a file's sha256 must be 64 lowercase hex digits")
        names.append(file_name(item[0], "files", p))
    for i in range(len(names)):
        if names[i] in names[i + 1 :]:
            p._refuse("files", "names a file twice")
    return value


async def offered(link, ws, kind, msg):
    """Linked mode's answer to an update's frame. A manifest from our proven PC restarts the
    board into update mode (updating.py), which takes the files with only the heap that
    needs; never while a needle is being calibrated, nor while this version is on trial.
    Anything else is answered with `update_status` `refused`."""
    import slots

    if not link.proven:
        reason = "updates come only from the paired PC"
    elif any(needle.raw is not None for needle in link.device.needles.all):
        reason = "a needle is being calibrated"
    elif slots.on_trial():
        reason = "the running version is still on trial"
    elif kind == "chunk":
        reason = "no update under way: its manifest comes first"
    else:
        import notes

        if notes.ask_update(link.endpoint):
            print("update: the PC offers %s; restarting to take it" % msg["version"])
            await ws.close(1012, "restarting to take the update")
            link.device.needles.park()
            import hal

            hal.reset()
            return
        reason = "the meter could not note the update on its flash"
    print("update: " + reason)
    await link._send(ws, {"type": "update_status", "state": "refused", "reason": reason})
