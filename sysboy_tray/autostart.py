"""Start at login for the current user, no admin rights: the Windows Run key or an XDG file."""

from __future__ import annotations

import configparser
import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from sysboy_tray.config import atomic_write
from sysboy_tray.errors import ConfigError

log = logging.getLogger(__name__)

APP_NAME = "Sysboy2000"
RUN_VALUE = "Sysboy2000"
DESKTOP_FILE = "sysboy.desktop"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
# StartupApproved data: 12 bytes; an odd first byte means the user turned the entry off
# (Task Manager, Settings > Apps > Startup); 02 followed by zeros means on.
APPROVED_ON = bytes([2]) + bytes(11)


class Autostart(Protocol):
    """Start at login, as the menu checkbox sees it."""

    @property
    def where(self) -> str:
        """Where the entry lives, in words a user can look up."""
        ...

    def is_enabled(self) -> bool:
        """True when Sysboy will start at the next login."""
        ...

    def enable(self) -> None:
        """Start at login from now on; raises ConfigError when it cannot."""
        ...

    def disable(self) -> None:
        """Do not start at login; raises ConfigError when it cannot."""
        ...

    def refresh(self) -> bool:
        """If an entry exists but starts another path (the app moved), point it here.

        Returns True when the entry was rewritten; never raises (the log says why not).
        """
        ...


def start_command(windowed: bool = False) -> list[str]:
    """The command that starts the tray app: the frozen executable, or `<python> -m sysboy_tray`.

    With `windowed`, prefer pythonw.exe next to python.exe, so no console opens at login.
    """
    executable = Path(sys.executable)
    if getattr(sys, "frozen", False):
        # the console twin (sysboy-cli.exe) would open a console window at every login
        windowed_twin = executable.with_name(executable.name.replace("-cli", ""))
        if windowed and windowed_twin != executable and windowed_twin.is_file():
            return [str(windowed_twin)]
        return [str(executable)]
    if windowed and executable.name.lower() == "python.exe":
        quiet = executable.with_name("pythonw.exe")
        if quiet.is_file():
            executable = quiet
    return [str(executable), "-m", "sysboy_tray"]


class WindowsRunKey:
    """HKCU Run value, honouring the StartupApproved off switch that Task Manager sets."""

    def __init__(self, command: list[str], registry: Any) -> None:
        self.command_line = subprocess.list2cmdline(command)
        self._reg = registry

    @property
    def where(self) -> str:
        return f"HKEY_CURRENT_USER\\{RUN_KEY} ({RUN_VALUE})"

    def _read(self, path: str) -> Any:
        reg = self._reg
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, path, 0, reg.KEY_QUERY_VALUE) as key:
                value, _kind = reg.QueryValueEx(key, RUN_VALUE)
        except FileNotFoundError:
            return None
        return value

    def is_enabled(self) -> bool:
        try:
            if self._read(RUN_KEY) is None:
                return False
            approved = self._read(APPROVED_KEY)
        except OSError as exc:
            log.warning("cannot read the start-at-login entry: %s", exc)
            return False
        turned_off = isinstance(approved, bytes) and len(approved) > 0 and approved[0] & 1
        return not turned_off

    def enable(self) -> None:
        reg = self._reg
        try:
            with reg.CreateKeyEx(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_SET_VALUE) as key:
                reg.SetValueEx(key, RUN_VALUE, 0, reg.REG_SZ, self.command_line)
            # Without this, an entry the user once turned off would stay off.
            if self._read(APPROVED_KEY) is not None:
                with reg.OpenKey(reg.HKEY_CURRENT_USER, APPROVED_KEY, 0, reg.KEY_SET_VALUE) as key:
                    reg.SetValueEx(key, RUN_VALUE, 0, reg.REG_BINARY, APPROVED_ON)
        except OSError as exc:
            raise ConfigError(f"cannot turn on start at login in the registry: {exc}") from exc

    def refresh(self) -> bool:
        reg = self._reg
        try:
            stored = self._read(RUN_KEY)
            if stored is None or stored == self.command_line:
                return False
            # only the Run value: a user's off switch in StartupApproved stays as it is
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_SET_VALUE) as key:
                reg.SetValueEx(key, RUN_VALUE, 0, reg.REG_SZ, self.command_line)
        except OSError as exc:
            log.warning("cannot update the start-at-login entry: %s", exc)
            return False
        log.info("start at login now starts %s (it started %s)", self.command_line, stored)
        return True

    def disable(self) -> None:
        reg = self._reg
        for path in (RUN_KEY, APPROVED_KEY):
            try:
                with reg.OpenKey(reg.HKEY_CURRENT_USER, path, 0, reg.KEY_SET_VALUE) as key:
                    reg.DeleteValue(key, RUN_VALUE)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise ConfigError(f"cannot turn off start at login in the registry: {exc}") from exc


def _exec_arg(arg: str) -> str:
    """One argument of a desktop entry's Exec key, quoted as the Desktop Entry spec says."""
    if "\n" in arg or "\r" in arg:
        raise ConfigError("the program path holds a line break; start at login cannot use it")
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\"'\\><~|&;$*?#()`="):
        return arg
    for c in '\\"`$':
        arg = arg.replace(c, "\\" + c)
    return f'"{arg}"'


def desktop_entry(command: list[str]) -> str:
    """The text of the XDG autostart file for `command`."""
    exec_value = " ".join(_exec_arg(a) for a in command)
    # Desktop files escape backslashes once more, after the quoting above.
    exec_value = exec_value.replace("\\", "\\\\")
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={APP_NAME}\n"
        "Comment=Live PC data on the Sysboy2000 panel meter\n"
        f"Exec={exec_value}\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


class XdgAutostartFile:
    """An XDG autostart .desktop file in $XDG_CONFIG_HOME/autostart."""

    def __init__(self, command: list[str], config_home: Path) -> None:
        self.command = list(command)
        self.path = config_home / "autostart" / DESKTOP_FILE

    @property
    def where(self) -> str:
        return str(self.path)

    def is_enabled(self) -> bool:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read_string(self.path.read_text("utf-8"))
            entry = parser["Desktop Entry"]
        except FileNotFoundError:
            return False
        except (OSError, UnicodeDecodeError, configparser.Error, KeyError) as exc:
            log.warning("cannot read %s: %s", self.path, exc)
            return False
        # Hidden=true deletes the entry; GNOME's switch turns it off without deleting it.
        if entry.get("Hidden", "false").strip().lower() == "true":
            return False
        return entry.get("X-GNOME-Autostart-enabled", "true").strip().lower() != "false"

    def enable(self) -> None:
        try:
            atomic_write(self.path, desktop_entry(self.command).encode("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def refresh(self) -> bool:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return False
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read %s: %s", self.path, exc)
            return False
        wanted = desktop_entry(self.command)
        if text == wanted or not self.is_enabled():
            return False
        try:
            atomic_write(self.path, wanted.encode("utf-8"))
        except OSError as exc:
            log.warning("cannot update %s: %s", self.path, exc)
            return False
        log.info("start at login now starts %s", " ".join(self.command))
        return True

    def disable(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot remove {self.path}: {exc.strerror or exc}") from exc


class NoAutostart:
    """A platform where Sysboy cannot start itself at login."""

    where = "nowhere (not supported on this system)"

    def is_enabled(self) -> bool:
        return False

    def enable(self) -> None:
        raise ConfigError("start at login is not supported on this system")

    def disable(self) -> None:
        pass

    def refresh(self) -> bool:
        return False


def xdg_config_home() -> Path:
    """$XDG_CONFIG_HOME when it is an absolute path (as the spec says), else ~/.config."""
    value = os.environ.get("XDG_CONFIG_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".config"


def autostart_for(platform: str = sys.platform) -> Autostart:
    """The start-at-login entry for this platform: the one place that chooses."""
    if platform == "win32":
        return WindowsRunKey(start_command(windowed=True), importlib.import_module("winreg"))
    if platform == "darwin":
        return NoAutostart()
    return XdgAutostartFile(start_command(), xdg_config_home())
