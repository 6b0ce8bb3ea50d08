"""Notes a start leaves for the next one, each in its own small file: why the setup portal
must open, and where the PC that sends a firmware update is. Written to a temp file, then
renamed; read once, then removed, so a start that fails does not repeat itself."""

import config
from micropython import const

_SETUP = const("setup.txt")  # why the next start opens the setup portal
_UPDATE = const("update.txt")  # app.py's _UPDATE_NOTE: the next start takes an update


def ask_setup(reason, folder=None):
    """Make the next start open the setup portal, saying `reason` (the board resets into it)."""
    _note(_SETUP, reason[:200], folder)


def setup_asked(folder=None):
    """The reason the portal was asked for before the last reset, or None; asked once only."""
    reason = _taken(_SETUP, folder)
    return None if reason is None else reason or "Change the settings here."


def ask_update(endpoint, folder=None):
    """Make the next start take a firmware update from the PC at `endpoint` (host, port and
    path), in update mode (updating.py); the board resets into it. False when the note could
    not be written (then the board must not reset for it)."""
    text = "%s %d %s" % (endpoint["host"], endpoint["port"], endpoint["path"])
    return _note(_UPDATE, text, folder)


def update_asked(folder=None):
    """The endpoint of the PC whose update was asked for before the last reset, or None;
    asked once only, so a start that fails in update mode comes back linked."""
    parts = (_taken(_UPDATE, folder) or "").split(" ", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[0] or not parts[2]:
        return None
    return {"host": parts[0], "port": int(parts[1]), "path": parts[2]}


def _note(name, text, folder):
    path = config.file_path(folder, name)
    try:
        with open(path + ".tmp", "w") as f:
            f.write(text)
        config.replace(path + ".tmp", path)
    except OSError as exc:  # the request is lost: the board starts as it would have
        print("config: could not note %s (%r)" % (name, exc))
        return False
    return True


def _taken(name, folder):
    """The text of note `name`, removed as it is read; None when there is none."""
    path = config.file_path(folder, name)
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    config.remove(path)
    return text
