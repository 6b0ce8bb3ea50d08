"""The optional Debian packages some tests need, and the skip that names a missing one.

`python3 -m pytest -q` passes on a fresh machine: a test that needs a package from
.ci/apt-packages.txt skips, naming the packages to install. CI installs them all, so
there every test runs. SYSBOY_TEST_ABSENT (a comma-separated list of package names, or
`all`) makes the named packages count as absent, to check the skips themselves.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess

import pytest

# package -> the programs it puts on PATH (any one of them will do)
PROGRAMS: dict[str, tuple[str, ...]] = {
    "xvfb": ("Xvfb",),
    "xdotool": ("xdotool",),
    "trayer": ("trayer",),
    "chromium": ("chromium", "chromium-browser"),
    "dbus-daemon": ("dbus-daemon",),
    "iproute2": ("ip",),
    "shellcheck": ("shellcheck",),
}
# package -> the module it gives the Python running the tests (Debian's python3-tk is
# Tkinter for Debian's Python; other builds of Python carry their own)
MODULES: dict[str, str] = {"python3-tk": "_tkinter"}
# the packages behind Debian's PyGObject tray, each checked by one step of this script
GI_PACKAGES = ("python3-gi", "gir1.2-gtk-3.0", "gir1.2-ayatanaappindicator3-0.1")
DEBIAN_PYTHON = "/usr/bin/python3"
GI_PROBE = """
import sys
try:
    import gi
except ImportError:
    sys.exit(1)
for step, (name, version) in enumerate([("Gtk", "3.0"), ("AyatanaAppIndicator3", "0.1")], 2):
    try:
        gi.require_version(name, version)
        __import__("gi.repository." + name)
    except (ImportError, ValueError):
        sys.exit(step)
"""


def _pretended_absent() -> set[str]:
    names = {n.strip() for n in os.environ.get("SYSBOY_TEST_ABSENT", "").split(",")}
    if "all" in names:
        return {*PROGRAMS, *MODULES, *GI_PACKAGES}
    return names - {""}


@functools.cache
def _gi_missing() -> tuple[str, ...]:
    """The PyGObject packages Debian's own Python lacks (from the first missing one on)."""
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        return GI_PACKAGES
    try:
        result = subprocess.run(
            [DEBIAN_PYTHON, "-c", GI_PROBE],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return GI_PACKAGES
    failed_at = result.returncode
    return GI_PACKAGES[failed_at - 1 :] if 1 <= failed_at <= len(GI_PACKAGES) else ()


def missing(*packages: str) -> list[str]:
    """The packages among `packages` that are not installed here."""
    absent = _pretended_absent()
    gone = []
    for package in packages:
        if package in absent:
            gone.append(package)
        elif package in PROGRAMS:
            if not any(shutil.which(program) for program in PROGRAMS[package]):
                gone.append(package)
        elif package in MODULES:
            if importlib.util.find_spec(MODULES[package]) is None:
                gone.append(package)
        elif package in GI_PACKAGES:
            if package in _gi_missing():
                gone.append(package)
        else:
            raise ValueError(f"{package} is not a known optional Debian package")
    return gone


def reason(gone: list[str]) -> str:
    """The skip's sentence: what is missing and how to install it."""
    several = len(gone) > 1
    return (
        f"needs the Debian package{'s' if several else ''} {', '.join(gone)} "
        f"(sudo apt install {' '.join(gone)}; CI installs {'them' if several else 'it'} "
        "from .ci/apt-packages.txt)"
    )


def needs(*packages: str) -> pytest.MarkDecorator:
    """A mark that skips the test, naming what is missing, unless every package is here."""
    gone = missing(*packages)
    return pytest.mark.skipif(bool(gone), reason=reason(gone) if gone else "")


def need(*packages: str) -> None:
    """Skip the running test (or fixture) unless every package is here."""
    gone = missing(*packages)
    if gone:
        pytest.skip(reason(gone))
