"""Which meters this PC trusts: their keys (`pairs.json`) and the meters waiting to pair.

The keys file is the PC's half of each pairing (docs/protocol.md, "Trust"): mode 0600,
written to a temporary file and renamed. A meter that is not in it gets no data and can
change nothing; a new one pairs by its button while the PC shows it, or over USB.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sysboy_tray.config import Paths, SettingsStore, atomic_write
from sysboy_tray.errors import ConfigError
from sysboy_tray.instance import exclusive

log = logging.getLogger(__name__)

PAIRS_VERSION = 1
MAX_PAIRS = 256  # far more meters than a desk holds; a cap on what strangers could add
PAIRING_WINDOW_S = 60.0
MAX_NEW_METERS = 8  # meters shown as waiting to pair at once; the oldest make room
KEY_BYTES = 32
# what the tray and `sysboy status` say while an unpaired meter waits for its button
PRESS_TO_PAIR = "New meter found — press its button to pair"


def new_key() -> str:
    """A fresh 256-bit pairing key, as 64 lowercase hex digits."""
    return secrets.token_hex(KEY_BYTES)


def _is_key(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 2 * KEY_BYTES
        and all(c in "0123456789abcdef" for c in value)
    )


class PairStore:
    """The pairing keys, one per meter id, kept in a file only the user can read."""

    def __init__(self, path: Path, limit: int = MAX_PAIRS) -> None:
        self.path = path
        self.limit = limit
        self._lock = threading.Lock()
        self._lock_path = path.with_name(path.name + ".lock")
        self._seen: tuple[int, int, int] | None = None
        self._keys: dict[str, str] = {}
        self._fresh()

    def _fresh(self) -> None:
        """Read the file again if it changed: a USB deploy pairs from another process."""
        try:
            st = self.path.stat()
            seen: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            seen = None
        if seen != self._seen:
            self._seen = seen
            self._keys = self._load() if seen is not None else {}

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("pairing keys unreadable (%s): no meter can link until paired again", exc)
            return {}
        pairs = data.get("pairs") if isinstance(data, dict) else None
        if not isinstance(pairs, dict):
            log.error("pairing keys file %s has no 'pairs' object; ignored", self.path)
            return {}
        keys = {}
        for device_id, entry in pairs.items():
            key = entry.get("key") if isinstance(entry, dict) else None
            if _is_key(key):
                keys[str(device_id)] = str(key)
            else:
                log.warning("pairing key of meter %r is not 64 hex digits; ignored", device_id)
        self._tighten()
        return keys

    def _tighten(self) -> None:
        """A keys file others can read is made private again (it may predate this version)."""
        if os.name != "posix":
            return
        try:
            if self.path.stat().st_mode & 0o077:
                os.chmod(self.path, 0o600)
                log.warning("%s was readable by others; it is private now", self.path)
        except OSError:
            pass

    def key_for(self, device_id: str) -> str | None:
        """The key shared with meter `device_id`, or None when not paired."""
        with self._lock:
            self._fresh()
            return self._keys.get(device_id)

    def ids(self) -> list[str]:
        """The ids of every paired meter, sorted."""
        with self._lock:
            self._fresh()
            return sorted(self._keys)

    def pair(self, device_id: str, key: str | None = None, *, keep: bool = False) -> str:
        """Make (or take) a key for `device_id`, save it, and return it; with `keep`, a
        meter paired already keeps the key it has.

        Raises:
            ConfigError: the key is not 64 hex digits, or the PC already holds its
                maximum of meters and this one is new.
        """
        key = new_key() if key is None else key
        if not _is_key(key):
            raise ConfigError("a pairing key is 64 lowercase hex digits")
        # another process (a USB deploy, a simulator) may write the file too
        with self._lock, exclusive(self._lock_path):
            self._fresh()
            if keep and device_id in self._keys:
                return self._keys[device_id]
            if device_id not in self._keys and len(self._keys) >= self.limit:
                raise ConfigError(
                    f"this PC is paired with {self.limit} meters already: forget one first"
                )
            keys = dict(self._keys)
            keys[device_id] = key
            self._write(keys)
            self._keys = keys
        log.info("paired with meter %r", device_id)
        return key

    def forget(self, device_id: str) -> bool:
        """Drop a meter's key; True if there was one."""
        with self._lock, exclusive(self._lock_path):
            self._fresh()
            if device_id not in self._keys:
                return False
            keys = dict(self._keys)
            del keys[device_id]
            self._write(keys)
            self._keys = keys
        log.info("forgot the pairing with meter %r", device_id)
        return True

    def _write(self, keys: dict[str, str]) -> None:
        data = {"version": PAIRS_VERSION, "pairs": {i: {"key": k} for i, k in keys.items()}}
        atomic_write(self.path, (json.dumps(data, indent=1) + "\n").encode(), mode=0o600)
        st = self.path.stat()
        self._seen = (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass(frozen=True)
class NewMeter:
    """An unpaired meter that said hello: a press of its button pairs it until `until`."""

    id: str
    name: str
    address: str
    until: float  # time.monotonic() when the window closes

    def seconds_left(self) -> int:
        """Whole seconds until the window closes (0 once it has)."""
        return max(0, int(self.until - time.monotonic() + 0.999))


class NewMeters:
    """The meters waiting to pair, each for 60 s from its last hello (loop thread only)."""

    def __init__(self, window_s: float = PAIRING_WINDOW_S, limit: int = MAX_NEW_METERS) -> None:
        self.window_s = window_s
        self.limit = limit
        self._waiting: dict[str, NewMeter] = {}

    def seen(self, device_id: str, name: str, address: str) -> None:
        """An unpaired meter said hello: open (or renew) its window."""
        self._waiting.pop(device_id, None)
        self._waiting[device_id] = NewMeter(
            device_id, name, address, time.monotonic() + self.window_s
        )
        while len(self._waiting) > self.limit:
            del self._waiting[next(iter(self._waiting))]

    def is_open(self, device_id: str) -> bool:
        """True while a press of this meter's button may pair it."""
        meter = self._waiting.get(device_id)
        return meter is not None and time.monotonic() < meter.until

    def done(self, device_id: str) -> None:
        """The meter paired (or left for good): stop showing it."""
        self._waiting.pop(device_id, None)

    def waiting(self) -> list[NewMeter]:
        """The meters whose window is still open, oldest first."""
        now = time.monotonic()
        for device_id in [i for i, m in self._waiting.items() if m.until <= now]:
            del self._waiting[device_id]
        return list(self._waiting.values())


@dataclass
class Trust:
    """Everything the handshake needs: this PC's id, its keys, and the meters waiting."""

    pc_id: str
    pairs: PairStore
    new_meters: NewMeters


def pair_by_cable(device_id: str, paths: Paths | None = None) -> tuple[str, str]:
    """What a USB cable does: the meter's key (kept if it has one) stored in this PC's pairs
    file; returns (key, this PC's id) for the meter's own settings.

    Raises:
        ConfigError: the PC is paired with its maximum of meters already.
    """
    paths = paths or Paths.default()
    pc_id = SettingsStore(paths.settings_file).settings.install_id
    return PairStore(paths.pairs_file).pair(device_id, keep=True), pc_id
