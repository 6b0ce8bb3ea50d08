"""Packaging: the release workflow passes actionlint, the Windows version resource, README paths."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest
from platformdirs.unix import Unix
from platformdirs.windows import Windows

from sysboy_tray import __version__

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
sys.path.insert(0, str(ROOT / "scripts"))

import version_resource  # noqa: E402


def actionlint() -> str:
    beside = Path(sys.executable).with_name("actionlint")
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    assert found, "actionlint is missing: pip install -e '.[test]' installs it"
    return found


def lint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-color=false", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert WORKFLOWS / "release.yml" in files
    done = lint(*files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_a_broken_release_workflow(tmp_path: Path) -> None:
    text = (WORKFLOWS / "release.yml").read_text("utf-8")
    assert "${{ matrix.platform }}" in text
    broken = tmp_path / "release.yml"
    broken.write_text(text.replace("${{ matrix.platform }}", "${{ matrix.platfrom }}", 1))
    done = lint(broken)
    assert done.returncode != 0
    assert "platfrom" in done.stdout


def test_release_builds_every_platform_and_smoke_tests_it() -> None:
    text = (WORKFLOWS / "release.yml").read_text("utf-8")
    assert 'tags: ["v*"]' in text
    for runner in ("windows-latest", "ubuntu-latest"):
        assert f"os: {runner}" in text
    assert "python scripts/smoke_binary.py --dist dist" in text
    assert 'python-version: "3.11"' in text
    # Windows as users meet it: no UTF-8 mode hiding codepage errors, the double-click checks
    assert not re.search(r"^\s*PYTHONUTF8\s*:", text, re.MULTILINE)
    assert (
        "if: runner.os == 'Windows'\n        run: python scripts/windows_checks.py --dist dist"
        in text
    )


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("0.1.0", (0, 1, 0, 0)),
        ("1.2", (1, 2, 0, 0)),
        ("2.3.4.5", (2, 3, 4, 5)),
        ("1.0.0rc1", (1, 0, 0, 0)),
    ],
)
def test_version_numbers(text: str, numbers: tuple[int, int, int, int]) -> None:
    assert version_resource.version_numbers(text) == numbers


@pytest.mark.parametrize("text", ["", "v1.0", "1.70000.0"])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        version_resource.version_numbers(text)


def test_read_version_matches_the_package() -> None:
    assert version_resource.read_version() == __version__


def test_version_resource_round_trips_through_pyinstaller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import PyInstaller.compat

    # versioninfo imports the Windows API binding, used only to write into an .exe: the
    # boundary faked here; building, printing and parsing the resource are plain Python
    if not hasattr(PyInstaller.compat, "win32api"):
        monkeypatch.setattr(PyInstaller.compat, "win32api", None, raising=False)
    from PyInstaller.utils.win32 import versioninfo

    resource = version_resource.version_resource("1.2.3", "sysboy.exe")
    # PyInstaller reads this text form back for `--version-file`: parse what we wrote
    text_file = tmp_path / "version.txt"
    text_file.write_text(str(resource), "utf-8")
    loaded = versioninfo.load_version_info_from_text_file(str(text_file))
    ffi = loaded.ffi
    assert (ffi.fileVersionMS, ffi.fileVersionLS) == ((1 << 16) | 2, 3 << 16)
    assert (ffi.productVersionMS, ffi.productVersionLS) == ((1 << 16) | 2, 3 << 16)
    strings = {s.name: s.val for s in loaded.kids[0].kids[0].kids}
    assert strings["FileVersion"] == "1.2.3"
    assert strings["OriginalFilename"] == "sysboy.exe"
    assert strings["ProductName"] == "Sysboy2000"
    # and the binary form Windows reads is produced without error
    assert len(loaded.toRaw()) > 200


def test_readme_names_the_real_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's config and log folders are what platformdirs gives on each OS."""
    readme = (ROOT / "README.md").read_text("utf-8")
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/home/user")
    linux = Unix("sysboy", False)
    for folder in (linux.user_config_dir, linux.user_log_dir, linux.user_data_dir):
        assert folder.startswith("/home/user/")
        assert f"~/{folder.removeprefix('/home/user/')}" in readme, folder
    # the Windows shell folder lookup is the boundary faked here
    local = r"C:\Users\user\AppData\Local"
    monkeypatch.setattr(platformdirs.windows, "get_win_folder", lambda csidl: local)
    windows = Windows("sysboy", False)
    for folder in (windows.user_config_dir, windows.user_log_dir, windows.user_data_dir):
        assert folder.startswith(local)
        # joined with this OS's separator; Windows joins with backslashes
        tail = folder.removeprefix(local).replace("/", "\\")
        assert f"%LOCALAPPDATA%{tail}" in readme, folder
