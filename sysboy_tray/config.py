"""Where Sysboy keeps its files, and the settings file (written temp-then-rename)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from sysboy_tray import DEFAULT_PORT
from sysboy_tray.errors import ConfigError, ProtocolError
from sysboy_tray.protocol import LINEAR, check_points, is_metric_id

log = logging.getLogger(__name__)

APP_NAME = "sysboy"
SETTINGS_VERSION = 1
INTERVAL_RANGE = (0.1, 60.0)
BAD_COPIES = 3  # settings.json.bad, .bad.1, .bad.2: the newest damaged files


@dataclass(frozen=True)
class Paths:
    """The folders Sysboy uses; each can be moved by an environment variable."""

    config_dir: Path
    log_dir: Path
    data_dir: Path

    @classmethod
    def default(cls) -> Paths:
        """Platform folders (platformdirs), or SYSBOY_CONFIG_DIR / _LOG_DIR / _DATA_DIR."""
        env = os.environ
        return cls(
            Path(env.get("SYSBOY_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME, False)),
            Path(env.get("SYSBOY_LOG_DIR") or platformdirs.user_log_dir(APP_NAME, False)),
            Path(env.get("SYSBOY_DATA_DIR") or platformdirs.user_data_dir(APP_NAME, False)),
        )

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def pairs_file(self) -> Path:
        """The keys of the meters this PC is paired with (mode 0600)."""
        return self.config_dir / "pairs.json"

    @property
    def token_file(self) -> Path:
        return self.config_dir / "control-token"

    @property
    def state_file(self) -> Path:
        """Where the running app writes its port, for the CLI and the calibration window."""
        return self.data_dir / "running.json"


# Windows refuses to replace a file that another program (an antivirus scan, a backup,
# an indexer) holds open for a moment; waiting a little usually outlasts it.
REPLACE_WAITS_S = (0.05, 0.1, 0.2, 0.4, 0.8)


def replace_patiently(source: str | Path, target: Path) -> None:
    """`os.replace`, tried again a few times while the target is held by another program.

    Raises:
        PermissionError: still refused after about 1.5 s.
    """
    for wait in (*REPLACE_WAITS_S, None):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if wait is None:
                raise
            log.debug("%s is held by another program; trying again", target)
            time.sleep(wait)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` so that `path` holds either the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        replace_patiently(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


MAX_NEEDLES = 4
# a desk holds a few meters; the cap keeps the settings file from growing without end
MAX_DEVICES = 64


@dataclass(frozen=True)
class NeedleSettings:
    """What the PC remembers of one needle: its own metric (None: the global one) and
    calibration."""

    metric: str | None = None
    calibration: tuple[tuple[float, float], ...] = LINEAR


@dataclass(frozen=True)
class DeviceSettings:
    """What the PC remembers of one device: its name and each of its needles (1 to 4)."""

    name: str | None = None
    needles: tuple[NeedleSettings, ...] = (NeedleSettings(),)

    @property
    def metric(self) -> str | None:
        """Needle 1's metric (what a one-needle device shows)."""
        return self.needles[0].metric

    @property
    def calibration(self) -> tuple[tuple[float, float], ...]:
        """Needle 1's calibration."""
        return self.needles[0].calibration

    def needle(self, number: int) -> NeedleSettings:
        """Needle `number`'s settings (1..4); defaults for a needle never set."""
        return self.needles[number - 1] if number <= len(self.needles) else NeedleSettings()

    def with_needle(self, number: int, **changes: Any) -> DeviceSettings:
        """A copy with needle `number` changed (metric, calibration)."""
        if not 1 <= number <= MAX_NEEDLES:
            raise ConfigError(f"a meter has needles 1 to {MAX_NEEDLES}, not {number}")
        needles = list(self.needles)
        while len(needles) < number:
            needles.append(NeedleSettings())
        needles[number - 1] = replace(needles[number - 1], **changes)
        return replace(self, needles=tuple(needles))


@dataclass(frozen=True)
class Settings:
    """Everything the user can set; defaults are what a new user gets."""

    port: int = DEFAULT_PORT
    interval_s: float = 1.0
    metric: str = "vram"
    gpu: int | None = None
    gpu_temp_range: tuple[float, float] = (30.0, 90.0)
    net_full_scale_bps: float | None = None
    custom_ttl_s: float = 30.0
    install_id: str = ""
    devices: dict[str, DeviceSettings] = field(default_factory=dict)

    def with_device(self, device_id: str, needle: int = 1, **changes: Any) -> Settings:
        """A copy with one device's settings changed: `name`, or one needle's `metric`
        and `calibration` (needle 1 unless told)."""
        device = self.devices.get(device_id, DeviceSettings())
        if "name" in changes:
            device = replace(device, name=changes.pop("name"))
        if changes:
            device = device.with_needle(needle, **changes)
        devices = dict(self.devices)
        devices[device_id] = device
        return replace(self, devices=devices)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["version"] = SETTINGS_VERSION
        for device in out["devices"].values():
            for one in device["needles"]:
                one["calibration"] = [list(p) for p in one["calibration"]]
        out["gpu_temp_range"] = list(self.gpu_temp_range)
        return out


def _check_number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number")
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g}")
    return float(value)


def check_interval(value: Any) -> float:
    """The sample interval in seconds, 0.1 to 60.

    Raises:
        ConfigError: not a number or out of range.
    """
    return _check_number("the update interval", value, *INTERVAL_RANGE)


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError("must be a whole number from 0 to 65535")
    return value


def _metric(value: Any) -> str:
    # metric ids are lowercase; a hand-edited "VRAM" means vram
    if not isinstance(value, str) or not is_metric_id(value.lower()):
        raise ConfigError("must be a metric name")
    return value.lower()


def _gpu(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError("must be a GPU index (0, 1, ...) or null")
    return value


def _temp_range(value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError("must be [low, high]")
    lo = _check_number("low", value[0], -50, 200)
    hi = _check_number("high", value[1], -50, 200)
    if hi <= lo:
        raise ConfigError("must go from low to high")
    return lo, hi


def _install_id(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise ConfigError("must be a short string")
    return value


DEVICE_NAME_MAX = 32


def device_name(text: str) -> str | None:
    """A name the user gave a device, trimmed; None (no name of the PC's) for "".

    Raises:
        ConfigError: too long, or holding control characters.
    """
    name = " ".join(text.split())  # no line breaks or runs of spaces in a menu item
    if len(name) > DEVICE_NAME_MAX:
        raise ConfigError(f"a device name has at most {DEVICE_NAME_MAX} characters")
    if any(unicodedata.category(c)[0] == "C" for c in name):
        raise ConfigError("a device name cannot hold control characters")
    return name or None


def _name(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 64):
        raise ConfigError("must be a short string")
    return value


def _calibration(value: Any) -> tuple[tuple[float, float], ...]:
    try:
        return check_points(value)
    except ProtocolError as exc:
        raise ConfigError(str(exc)) from None


# each field's check: the value as Settings holds it, or ConfigError saying what is wrong
_FIELDS: dict[str, Callable[[Any], Any]] = {
    "port": _port,
    "interval_s": check_interval,
    "metric": _metric,
    "gpu": _gpu,
    "gpu_temp_range": _temp_range,
    "net_full_scale_bps": lambda v: None if v is None else _check_number("it", v, 1, 1e13),
    "custom_ttl_s": lambda v: _check_number("it", v, 1, 86400),
    "install_id": _install_id,
}
_NEEDLE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "metric": lambda v: None if v is None else _metric(v),
    "calibration": _calibration,
}


def _checked(
    checks: dict[str, Callable[[Any], Any]], data: dict[str, Any], where: str, dropped: list[str]
) -> dict[str, Any]:
    """The values that pass their check; a sentence in `dropped` for each that does not."""
    values = {}
    for name, check in checks.items():
        if name in data:
            try:
                values[name] = check(data[name])
            except ConfigError as exc:
                dropped.append(f"{where}{name} {exc}")
    return values


def settings_from_json(data: Any) -> tuple[Settings, list[str]]:
    """Validate a parsed settings file field by field; unknown keys are ignored.

    Returns:
        The settings, where a bad field takes its default, and one sentence per
        field dropped ("port must be a whole number from 0 to 65535").

    Raises:
        ConfigError: the file does not hold a JSON object at all.
    """
    if not isinstance(data, dict):
        raise ConfigError("the settings file does not hold a JSON object")
    dropped: list[str] = []
    values = _checked(_FIELDS, data, "", dropped)
    raw_devices = data.get("devices", {})
    devices = {}
    if not isinstance(raw_devices, dict):
        dropped.append("devices must be an object")
        raw_devices = {}
    for device_id, entry in raw_devices.items():
        device = _device_from_json(str(device_id), entry, dropped)
        if device is not None:
            devices[str(device_id)] = device
    return Settings(**values, devices=devices), dropped


def _device_from_json(device_id: str, entry: Any, dropped: list[str]) -> DeviceSettings | None:
    """One device's settings, each bad field dropped alone (None: not an object at all)."""
    where = f"devices.{device_id}"
    if not isinstance(entry, dict):
        dropped.append(f"{where} must be an object")
        return None
    name = _checked({"name": _name}, entry, f"{where}.", dropped).get("name")
    # an older file keeps its one needle's metric and calibration on the device itself
    raw_needles = entry.get("needles", [entry])
    if not isinstance(raw_needles, list) or not 1 <= len(raw_needles) <= MAX_NEEDLES:
        dropped.append(f"{where}.needles must list 1 to {MAX_NEEDLES} needles")
        raw_needles = [{}]
    needles = []
    for number, one in enumerate(raw_needles, 1):
        if not isinstance(one, dict):
            dropped.append(f"{where} needle {number} must be an object")
            one = {}
        kept = _checked(_NEEDLE_FIELDS, one, f"{where} needle {number} ", dropped)
        needles.append(NeedleSettings(**kept))
    return DeviceSettings(name, tuple(needles))


class SettingsStore:
    """The settings file: loaded once; every change saved atomically by a writer thread.

    Changes take effect in memory at once, so callers on the event loop never wait for
    the disk; `flush()` waits until the file holds the latest settings.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._dirty = threading.Condition(self._lock)
        self._pending: Settings | None = None
        self._writer: threading.Thread | None = None
        # told (on the writer's thread) when a save fails for good, in a sentence
        self.on_error: Callable[[str], None] | None = None
        # False on a first run (no file, or no metric in it): the app may pick one
        self.metric_chosen = False
        self._settings = self._load()

    @property
    def settings(self) -> Settings:
        return self._settings

    def _load(self) -> Settings:
        settings = Settings()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as exc:
            log.warning("cannot read %s (%s); using defaults", self.path, exc)
            data = None
        dropped: list[str] = []
        if data is not None:
            try:
                # bytes, not text: json.loads refuses bad UTF-8 with a ValueError we handle here
                parsed = json.loads(data)
                settings, dropped = settings_from_json(parsed)
                self.metric_chosen = "metric" in parsed and not any(
                    d.startswith("metric ") for d in dropped
                )
            except (ValueError, RecursionError, ConfigError) as exc:
                bad = self._keep_bad()
                log.warning(
                    "settings file %s is damaged (%s); kept it as %s and using defaults",
                    self.path,
                    exc,
                    bad,
                )
        if dropped:
            bad = self._keep_bad(copy=True)
            log.warning(
                "settings file %s is damaged: dropped %s; kept the rest, and the file as %s",
                self.path,
                "; ".join(dropped),
                bad,
            )
        if dropped or not settings.install_id:
            if not settings.install_id:
                settings = replace(settings, install_id=secrets.token_hex(4))
            self._write(settings)
        return settings

    def _keep_bad(self, copy: bool = False) -> Path:
        """Set the damaged file aside as settings.json.bad, older ones as .bad.1, .bad.2."""
        bad = self.path.with_name(self.path.name + ".bad")
        for number in range(BAD_COPIES - 1, 0, -1):
            older = bad.with_name(f"{bad.name}.{number - 1}") if number > 1 else bad
            with contextlib.suppress(OSError):
                replace_patiently(older, bad.with_name(f"{bad.name}.{number}"))
        with contextlib.suppress(OSError):
            if copy:
                atomic_write(bad, self.path.read_bytes())
            else:
                replace_patiently(self.path, bad)
        return bad

    def _write(self, settings: Settings) -> None:
        data = json.dumps(settings.to_json(), indent=2, sort_keys=True).encode("utf-8")
        try:
            atomic_write(self.path, data)
        except OSError as exc:
            log.error("cannot save settings to %s: %s", self.path, exc)
            if self.on_error is not None:
                self.on_error(
                    f"Sysboy cannot save its settings ({exc.strerror or exc}); "
                    "the change holds until Sysboy quits"
                )

    def _save_soon(self) -> None:
        # called with the lock held
        self._pending = self._settings
        self._dirty.notify_all()
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="sysboy-settings", daemon=True
            )
            self._writer.start()

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while self._pending is None:
                    self._dirty.wait()
                settings = self._pending
            self._write(settings)
            with self._lock:
                if self._pending is settings:
                    self._pending = None
                    self._dirty.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the file holds the latest settings; False if that took too long."""
        with self._lock:
            return self._dirty.wait_for(lambda: self._pending is None, timeout)

    def update(self, **changes: Any) -> Settings:
        """Change settings and save them if they changed; return the new settings."""
        with self._lock:
            if "metric" in changes:
                self.metric_chosen = True  # a metric someone set is theirs, never switched
            new = replace(self._settings, **changes)
            if new != self._settings:
                self._settings = new
                self._save_soon()
            return self._settings

    def update_device(self, device_id: str, needle: int = 1, **changes: Any) -> Settings:
        """Change one device's settings (`name`, or a needle's `metric`, `calibration`;
        needle 1 unless told) and save them if they changed; return the new settings.

        Raises:
            ConfigError: no such needle (1 to 4), or a new device past `MAX_DEVICES`.
        """
        with self._lock:
            devices = self._settings.devices
            if device_id not in devices and len(devices) >= MAX_DEVICES:
                raise ConfigError(
                    f"Sysboy remembers at most {MAX_DEVICES} meters; forget one to add another"
                )
            new = self._settings.with_device(device_id, needle, **changes)
            if new != self._settings:
                self._settings = new
                self._save_soon()
            return self._settings

    def forget_device(self, device_id: str) -> Settings:
        """Drop what the PC remembers of a device."""
        with self._lock:
            if device_id in self._settings.devices:
                devices = dict(self._settings.devices)
                del devices[device_id]
                self._settings = replace(self._settings, devices=devices)
                self._save_soon()
            return self._settings
