"""The README's test command on a machine without the optional Debian packages.

The tests that need one skip, and the skip names the package; everything else passes.
The packages are made absent two ways: off PATH for real, and by SYSBOY_TEST_ABSENT for
a whole pytest run (which cannot uninstall Debian packages).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests import debian
from tests.conftest import scaled

ROOT = Path(__file__).resolve().parent.parent
# files whose tests need, between them, most of the optional packages
NEEDY = (
    "tests/test_tray_app.py",
    "tests/test_calibrate_window.py",
    "tests/test_sleep.py",
    "tests/test_tray_backend.py",
    "tests/firmware/test_portal_browser.py",
)


def pytest_run(absent: str, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        env={**os.environ, "SYSBOY_TEST_ABSENT": absent},
        capture_output=True,
        text=True,
        timeout=scaled(600),
        check=False,
    )


def skipped_for(output: str, package: str) -> list[str]:
    return [
        line
        for line in output.splitlines()
        if line.startswith("SKIPPED") and "needs the Debian package" in line and package in line
    ]


def test_without_the_packages_the_tests_skip_naming_them() -> None:
    result = pytest_run("all", *NEEDY)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " failed" not in result.stdout and " error" not in result.stdout
    named = ("xvfb", "xdotool", "python3-tk", "dbus-daemon", "chromium", *debian.GI_PACKAGES)
    for package in named:
        assert skipped_for(result.stdout, package), f"no skip names {package}:\n{result.stdout}"


def test_only_the_tray_host_missing_is_named_alone() -> None:
    if debian.missing("xvfb"):
        pytest.skip(debian.reason(debian.missing("xvfb")))
    result = pytest_run("trayer", "tests/test_tray_app.py")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    lines = skipped_for(result.stdout, "trayer")
    assert lines and not any("xvfb" in line for line in lines), result.stdout


def test_a_program_off_path_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYSBOY_TEST_ABSENT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert debian.missing("xvfb", "trayer", "iproute2", "chromium") == [
        "xvfb",
        "trayer",
        "iproute2",
        "chromium",
    ]
    browser = tmp_path / "chromium-browser"  # Ubuntu's name for it will do
    browser.write_text("#!/bin/sh\n")
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    assert debian.missing("chromium", "xvfb") == ["xvfb"]
    with pytest.raises(pytest.skip.Exception, match=r"needs the Debian package xvfb \("):
        debian.need("xvfb")


def test_an_unknown_package_is_a_mistake_in_the_test() -> None:
    with pytest.raises(ValueError, match="not a known optional Debian package"):
        debian.missing("xvfb-typo")
