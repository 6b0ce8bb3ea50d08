"""Start at login: the XDG autostart file for real, the Windows registry with winreg faked."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray import autostart
from sysboy_tray.errors import ConfigError


def parse_desktop(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text("utf-8"))
    return parser["Desktop Entry"]


def split_exec(value: str) -> list[str]:
    """Exec back to argv, by the Desktop Entry spec (string escapes, then quoting)."""
    unescaped, i = "", 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            unescaped += {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[value[i + 1]]
            i += 2
        else:
            unescaped += value[i]
            i += 1
    args: list[str] = []
    current, quoted, started, i = "", False, False, 0
    while i < len(unescaped):
        c = unescaped[i]
        if quoted and c == "\\":
            assert unescaped[i + 1] in '"`$\\'
            current += unescaped[i + 1]
            i += 1
        elif c == '"':
            quoted, started = not quoted, True
        elif c == " " and not quoted:
            if started:
                args.append(current)
            current, started = "", False
        else:
            current, started = current + c, True
        i += 1
    assert not quoted
    if started:
        args.append(current)
    return [a.replace("%%", "%") for a in args]


@pytest.fixture
def python_at(monkeypatch: pytest.MonkeyPatch) -> Any:
    def use(path: str, frozen: bool = False) -> None:
        monkeypatch.setattr(sys, "executable", path)
        if frozen:
            monkeypatch.setattr(sys, "frozen", True, raising=False)
        else:
            monkeypatch.delattr(sys, "frozen", raising=False)

    return use


# ---------------------------------------------------------------- Linux: XDG autostart


def test_xdg_file_written_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_at: Any
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    python_at("/opt/my python/bin/python3")
    entry_point = autostart.autostart_for("linux")
    path = tmp_path / "cfg" / "autostart" / "sysboy.desktop"
    assert entry_point.where == str(path)
    assert not entry_point.is_enabled()

    entry_point.enable()
    entry = parse_desktop(path)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Sysboy2000"
    assert entry["Terminal"] == "false"
    assert entry["X-GNOME-Autostart-enabled"] == "true"
    assert "Hidden" not in entry or entry["Hidden"] == "false"
    assert split_exec(entry["Exec"]) == ["/opt/my python/bin/python3", "-m", "sysboy_tray"]
    assert entry_point.is_enabled()
    # written temp-then-rename: nothing else left in the folder
    assert [p.name for p in path.parent.iterdir()] == ["sysboy.desktop"]

    entry_point.disable()
    assert not path.exists()
    assert not entry_point.is_enabled()
    entry_point.disable()  # twice is fine


def test_xdg_frozen_app_starts_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_at: Any
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    python_at("/home/me/Apps/sysboy", frozen=True)
    autostart.autostart_for("linux").enable()
    entry = parse_desktop(tmp_path / "autostart" / "sysboy.desktop")
    assert split_exec(entry["Exec"]) == ["/home/me/Apps/sysboy"]
    assert entry["Exec"] == "/home/me/Apps/sysboy"


@pytest.mark.parametrize(
    "path",
    ['/opt/a "b"/py', "/opt/$HOME/py", "/opt/100%/py", "/opt/back\\slash/py", "/opt/`x`/py"],
)
def test_xdg_exec_survives_awkward_paths(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_at: Any
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    python_at(path)
    autostart.autostart_for("linux").enable()
    entry = parse_desktop(tmp_path / "autostart" / "sysboy.desktop")
    assert split_exec(entry["Exec"]) == [path, "-m", "sysboy_tray"]


def test_xdg_line_break_in_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_at: Any
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    python_at("/opt/odd\nname/python3")
    with pytest.raises(ConfigError, match="line break"):
        autostart.autostart_for("linux").enable()
    assert not (tmp_path / "autostart" / "sysboy.desktop").exists()


def test_xdg_default_folder_is_dot_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert autostart.autostart_for("linux").where == str(
        tmp_path / ".config" / "autostart" / "sysboy.desktop"
    )
    # the spec ignores a relative XDG_CONFIG_HOME
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/cfg")
    assert autostart.xdg_config_home() == tmp_path / ".config"


@pytest.mark.parametrize(
    ("extra", "enabled"),
    [
        ("X-GNOME-Autostart-enabled=false\n", False),
        ("Hidden=true\n", False),
        ("Hidden=false\n", True),
    ],
)
def test_xdg_respects_switches_set_by_the_desktop(
    extra: str, enabled: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    entry_point = autostart.autostart_for("linux")
    path = tmp_path / "autostart" / "sysboy.desktop"
    path.parent.mkdir()
    text = autostart.desktop_entry(["/usr/bin/sysboy"]).replace(
        "X-GNOME-Autostart-enabled=true\n", ""
    )
    path.write_text(text + extra, "utf-8")
    assert entry_point.is_enabled() is enabled
    entry_point.enable()  # turning it on again overrides the desktop's switch
    assert entry_point.is_enabled()


def test_xdg_damaged_file_reads_as_off_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = tmp_path / "autostart" / "sysboy.desktop"
    path.parent.mkdir()
    path.write_bytes(b"\xff\xfe not a desktop file")
    entry_point = autostart.autostart_for("linux")
    assert not entry_point.is_enabled()
    entry_point.enable()
    assert entry_point.is_enabled()
    assert parse_desktop(path)["Name"] == "Sysboy2000"


def test_xdg_unwritable_folder_gives_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "cfg"
    blocker.write_text("a file where the folder should be", "utf-8")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))
    with pytest.raises(ConfigError, match="cannot write"):
        autostart.autostart_for("linux").enable()


# ---------------------------------------------------------------- Windows: winreg faked

HKCU, HKLM = 0x80000001, 0x80000002
KEY_QUERY_VALUE, KEY_SET_VALUE = 0x0001, 0x0002
REG_SZ, REG_BINARY = 1, 3


class FakeKey:
    def __init__(self, hive: int, path: str, access: int) -> None:
        self.hive, self.path, self.access = hive, path, access

    def __enter__(self) -> FakeKey:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class FakeWinreg:
    """The winreg functions Sysboy calls, over an in-memory registry; records every call."""

    HKEY_CURRENT_USER = HKCU
    HKEY_LOCAL_MACHINE = HKLM
    KEY_QUERY_VALUE = KEY_QUERY_VALUE
    KEY_SET_VALUE = KEY_SET_VALUE
    KEY_READ = 0x20019
    REG_SZ = REG_SZ
    REG_BINARY = REG_BINARY

    def __init__(self) -> None:
        self.keys: dict[tuple[int, str], dict[str, tuple[Any, int]]] = {
            (HKCU, autostart.RUN_KEY): {"OneDrive": ('"C:\\OneDrive.exe" /background', REG_SZ)},
        }
        self.calls: list[tuple[str, int, str]] = []
        self.refuse_writes = False

    def OpenKey(self, hive: int, path: str, reserved: int = 0, access: int = 0x20019) -> FakeKey:
        self.calls.append(("OpenKey", hive, path))
        if (hive, path.lower()) not in {(h, p.lower()) for h, p in self.keys}:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return FakeKey(hive, path, access)

    def CreateKeyEx(self, hive: int, path: str, reserved: int = 0, access: int = 0) -> FakeKey:
        self.calls.append(("CreateKeyEx", hive, path))
        self.keys.setdefault((hive, path), {})
        return FakeKey(hive, path, access)

    def _values(self, key: FakeKey) -> dict[str, tuple[Any, int]]:
        return self.keys[(key.hive, key.path)]

    def QueryValueEx(self, key: FakeKey, name: str) -> tuple[Any, int]:
        self.calls.append(("QueryValueEx", key.hive, key.path))
        try:
            return self._values(key)[name]
        except KeyError:
            raise FileNotFoundError(2, "The system cannot find the file specified") from None

    def SetValueEx(self, key: FakeKey, name: str, reserved: int, kind: int, value: Any) -> None:
        self.calls.append(("SetValueEx", key.hive, key.path))
        if not key.access & KEY_SET_VALUE or self.refuse_writes:
            raise PermissionError(5, "Access is denied")
        assert kind in (REG_SZ, REG_BINARY)
        assert isinstance(value, str if kind == REG_SZ else bytes)
        self._values(key)[name] = (value, kind)

    def DeleteValue(self, key: FakeKey, name: str) -> None:
        self.calls.append(("DeleteValue", key.hive, key.path))
        if not key.access & KEY_SET_VALUE:
            raise PermissionError(5, "Access is denied")
        try:
            del self._values(key)[name]
        except KeyError:
            raise FileNotFoundError(2, "The system cannot find the file specified") from None


@pytest.fixture
def winreg(monkeypatch: pytest.MonkeyPatch) -> FakeWinreg:
    fake = FakeWinreg()
    monkeypatch.setitem(sys.modules, "winreg", fake)
    return fake


def run_value(reg: FakeWinreg) -> tuple[Any, int] | None:
    return reg.keys[(HKCU, autostart.RUN_KEY)].get(autostart.RUN_VALUE)


def approved_value(reg: FakeWinreg) -> bytes | None:
    values = reg.keys.get((HKCU, autostart.APPROVED_KEY), {})
    found = values.get(autostart.RUN_VALUE)
    return None if found is None else found[0]


def test_windows_run_value_set_and_deleted(winreg: FakeWinreg, python_at: Any) -> None:
    python_at("C:\\Program Files\\Sysboy\\sysboy.exe", frozen=True)
    entry_point = autostart.autostart_for("win32")
    assert not entry_point.is_enabled()

    entry_point.enable()
    assert run_value(winreg) == ('"C:\\Program Files\\Sysboy\\sysboy.exe"', REG_SZ)
    assert entry_point.is_enabled()
    assert "OneDrive" in winreg.keys[(HKCU, autostart.RUN_KEY)]  # others left alone

    entry_point.disable()
    assert run_value(winreg) is None
    assert not entry_point.is_enabled()
    entry_point.disable()  # twice is fine
    assert "OneDrive" in winreg.keys[(HKCU, autostart.RUN_KEY)]
    # no admin rights: only the current user's hive is ever touched
    assert winreg.calls and {hive for _name, hive, _path in winreg.calls} == {HKCU}


def test_windows_turned_off_in_task_manager(winreg: FakeWinreg, python_at: Any) -> None:
    python_at("C:\\Sysboy\\sysboy.exe", frozen=True)
    entry_point = autostart.autostart_for("win32")
    entry_point.enable()
    # what Task Manager writes when the user disables the entry: 03 00 00 00 + FILETIME
    off = bytes([3, 0, 0, 0]) + (133_000_000_000_000_000).to_bytes(8, "little")
    winreg.keys[(HKCU, autostart.APPROVED_KEY)] = {autostart.RUN_VALUE: (off, REG_BINARY)}
    assert run_value(winreg) is not None
    assert not entry_point.is_enabled()  # the checkbox shows the truth

    entry_point.enable()  # turning it on clears the off switch
    approved = approved_value(winreg)
    assert approved is not None and approved[0] & 1 == 0
    assert entry_point.is_enabled()

    entry_point.disable()
    assert approved_value(winreg) is None
    assert run_value(winreg) is None


def test_windows_approved_on_reads_as_on(winreg: FakeWinreg, python_at: Any) -> None:
    python_at("C:\\Sysboy\\sysboy.exe", frozen=True)
    winreg.keys[(HKCU, autostart.APPROVED_KEY)] = {
        autostart.RUN_VALUE: (bytes([2]) + bytes(11), REG_BINARY)
    }
    entry_point = autostart.autostart_for("win32")
    assert not entry_point.is_enabled()  # approved alone, with no Run value, starts nothing
    entry_point.enable()
    assert entry_point.is_enabled()


def test_windows_from_source_uses_pythonw(
    winreg: FakeWinreg, tmp_path: Path, python_at: Any
) -> None:
    (tmp_path / "python.exe").write_bytes(b"")
    (tmp_path / "pythonw.exe").write_bytes(b"")
    python_at(str(tmp_path / "python.exe"))
    autostart.autostart_for("win32").enable()
    found = run_value(winreg)
    assert found == (f"{tmp_path / 'pythonw.exe'} -m sysboy_tray", REG_SZ)


def test_windows_refused_write_gives_a_clear_error(winreg: FakeWinreg, python_at: Any) -> None:
    python_at("C:\\Sysboy\\sysboy.exe", frozen=True)
    winreg.refuse_writes = True
    entry_point = autostart.autostart_for("win32")
    with pytest.raises(ConfigError, match="cannot turn on start at login"):
        entry_point.enable()
    assert not entry_point.is_enabled()


def test_start_command_from_source(python_at: Any) -> None:
    python_at("/usr/bin/python3")
    assert autostart.start_command() == ["/usr/bin/python3", "-m", "sysboy_tray"]
    assert autostart.start_command(windowed=True) == ["/usr/bin/python3", "-m", "sysboy_tray"]


def test_unsupported_platform_says_so() -> None:
    entry_point = autostart.autostart_for("darwin")
    assert not entry_point.is_enabled()
    with pytest.raises(ConfigError, match="not supported"):
        entry_point.enable()


def test_windows_stale_path_is_rewritten_at_start(winreg: FakeWinreg, python_at: Any) -> None:
    python_at("C:\\Users\\ana\\Downloads\\sysboy-0.1.0\\sysboy\\sysboy.exe", frozen=True)
    autostart.autostart_for("win32").enable()
    # an update unpacked elsewhere, started from there: login would start the old copy
    python_at("C:\\Users\\ana\\Apps\\sysboy-0.2.0\\sysboy\\sysboy.exe", frozen=True)
    moved = autostart.autostart_for("win32")
    assert moved.refresh() is True
    assert run_value(winreg) == ("C:\\Users\\ana\\Apps\\sysboy-0.2.0\\sysboy\\sysboy.exe", REG_SZ)
    assert moved.is_enabled()
    assert moved.refresh() is False  # nothing to do the next time
    assert "OneDrive" in winreg.keys[(HKCU, autostart.RUN_KEY)]


def test_windows_refresh_keeps_the_users_off_switch(winreg: FakeWinreg, python_at: Any) -> None:
    python_at("C:\\old\\sysboy.exe", frozen=True)
    autostart.autostart_for("win32").enable()
    off = bytes([3]) + bytes(11)
    winreg.keys[(HKCU, autostart.APPROVED_KEY)] = {autostart.RUN_VALUE: (off, REG_BINARY)}
    python_at("C:\\new\\sysboy.exe", frozen=True)
    moved = autostart.autostart_for("win32")
    assert moved.refresh() is True
    assert run_value(winreg) == ("C:\\new\\sysboy.exe", REG_SZ)
    assert approved_value(winreg) == off and not moved.is_enabled()


def test_windows_refresh_without_an_entry_adds_none(winreg: FakeWinreg, python_at: Any) -> None:
    python_at("C:\\new\\sysboy.exe", frozen=True)
    assert autostart.autostart_for("win32").refresh() is False
    assert run_value(winreg) is None
    winreg.refuse_writes = True
    python_at("C:\\old\\sysboy.exe", frozen=True)
    winreg.keys[(HKCU, autostart.RUN_KEY)][autostart.RUN_VALUE] = ("C:\\new\\sysboy.exe", REG_SZ)
    assert autostart.autostart_for("win32").refresh() is False  # refused: logged, not raised


def test_xdg_stale_path_is_rewritten(tmp_path: Path) -> None:
    old = autostart.XdgAutostartFile(["/opt/sysboy-0.1/sysboy"], tmp_path)
    old.enable()
    new = autostart.XdgAutostartFile(["/opt/sysboy-0.2/sysboy"], tmp_path)
    assert new.refresh() is True
    assert "Exec=/opt/sysboy-0.2/sysboy\n" in new.path.read_text("utf-8")
    assert new.refresh() is False
    new.disable()
    assert new.refresh() is False and not new.path.exists()
