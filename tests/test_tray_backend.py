"""Picking the pystray backend: one sentence without a display, a real icon under Xvfb."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import ImageGrab

from sysboy_tray.tray import backend
from sysboy_tray.tray.gauge import FACE_COLOURS, GaugeState
from tests.conftest import scaled
from tests.debian import GI_PACKAGES, needs
from tests.test_gauge import EXPECTED_DEG, angle_gap, close_to, needle_direction, pixel
from tests.xvfb import docked_icon, trayer, xvfb

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="X11 tray backends")

# What `sysboy` will do with a failure: print the sentence, exit non-zero.
LOAD = textwrap.dedent(
    """
    import sys
    from sysboy_tray.errors import TrayUnavailable
    from sysboy_tray.tray.backend import load_tray
    try:
        toolkit = load_tray()
    except TrayUnavailable as exc:
        print(exc)
        sys.exit(3)
    print(toolkit.name)
    """
)


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in env}
    full.update({k: v for k, v in env.items() if v is not None})
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )


def test_without_display_one_sentence_and_no_traceback() -> None:
    no_display: dict[str, str | None] = {
        "DISPLAY": None,
        "WAYLAND_DISPLAY": None,
        "PYSTRAY_BACKEND": None,
    }
    # the trap: pystray itself fails with an X error, which is not an ImportError
    bare = run_python("import pystray", **no_display)
    assert bare.returncode != 0
    assert "DisplayNameError" in bare.stderr

    result = run_python(LOAD, **no_display)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    sentence = result.stdout.strip()
    assert "\n" not in sentence and sentence.endswith(".")
    assert sentence.count(". ") == 0  # one sentence
    assert "DISPLAY is not set" in sentence
    assert "`sysboy serve`" in sentence


def test_unreachable_display_names_what_failed(tmp_path: Path) -> None:
    # a display whose socket does not exist: the X connection is refused
    result = run_python(
        LOAD, DISPLAY=f"unix:{tmp_path}/nothing:0", WAYLAND_DISPLAY=None, PYSTRAY_BACKEND=None
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot show a tray icon here (xorg:" in result.stdout
    assert "`sysboy serve`" in result.stdout


def test_unknown_backend_asked_by_the_user() -> None:
    result = run_python(LOAD, PYSTRAY_BACKEND="nonsense", DISPLAY=":0")
    assert result.returncode == 3
    assert "(nonsense: unknown backend" in result.stdout


# ---------------------------------------------------------------- the choice itself


def fake_gi(*namespaces: str) -> types.ModuleType:
    """PyGObject's `gi`, knowing only the given typelibs (the boundary, not our code)."""
    module = types.ModuleType("gi")

    def require_version(namespace: str, version: str) -> None:
        if f"{namespace}-{version}" not in namespaces:
            raise ValueError(f"Namespace {namespace} not available")

    module.require_version = require_version  # type: ignore[attr-defined]
    return module


@pytest.fixture
def no_backend_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("typelibs", "expected"),
    [
        (("Gtk-3.0", "AyatanaAppIndicator3-0.1"), ["appindicator", "gtk", "xorg"]),
        (("Gtk-3.0", "AppIndicator3-0.1"), ["appindicator", "gtk", "xorg"]),
        (("Gtk-3.0",), ["gtk", "xorg"]),
        (("AyatanaAppIndicator3-0.1",), ["xorg"]),  # no GTK 3: pystray cannot use it
        ((), ["xorg"]),
    ],
)
def test_linux_prefers_appindicator_then_gtk(
    typelibs: tuple[str, ...], expected: list[str], no_backend_env: pytest.MonkeyPatch
) -> None:
    no_backend_env.setitem(sys.modules, "gi", fake_gi(*typelibs))
    assert backend.candidates("linux") == expected


def test_without_pygobject_only_xorg(no_backend_env: pytest.MonkeyPatch) -> None:
    no_backend_env.setitem(sys.modules, "gi", None)  # import gi -> ImportError
    assert backend.candidates("linux") == ["xorg"]


def test_platforms_and_the_users_choice(no_backend_env: pytest.MonkeyPatch) -> None:
    assert backend.candidates("win32") == ["win32"]
    assert backend.candidates("darwin") == ["darwin"]
    no_backend_env.setenv("PYSTRAY_BACKEND", "dummy")
    assert backend.candidates("linux") == ["dummy"]
    assert backend.candidates("win32") == ["dummy"]


@needs(*GI_PACKAGES)
def test_debian_pygobject_is_found_for_real() -> None:
    """Debian's python3-gi with the AppIndicator and GTK typelibs: the full menu."""
    python = shutil.which("python3", path="/usr/bin")
    assert python, "Debian's python3 is missing"
    code = "from sysboy_tray.tray.backend import linux_candidates; print(linux_candidates())"
    result = subprocess.run(
        [python, "-c", code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['appindicator', 'gtk', 'xorg']", (
        "install python3-gi gir1.2-gtk-3.0 gir1.2-ayatanaappindicator3-0.1"
    )


# ---------------------------------------------------------------- under a real X server


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


def test_best_backend_makes_an_icon_under_xvfb(display: str) -> None:
    code = textwrap.dedent(
        """
        from sysboy_tray.tray.backend import linux_candidates, load_tray
        from sysboy_tray.tray.gauge import GaugeState, draw_gauge
        best = linux_candidates()[0]
        toolkit = load_tray()
        icon = toolkit.Icon("sysboy", draw_gauge(60, GaugeState.LINKED, 64), "Sysboy")
        print(best, toolkit.name, icon.icon.size, icon.title)
        """
    )
    result = run_python(code, DISPLAY=display, PYSTRAY_BACKEND=None)
    assert result.returncode == 0, result.stderr
    best, name, width, height, title = result.stdout.split()
    assert name == best
    assert (width, height, title) == ("(64,", "64)", "Sysboy")


ICON = textwrap.dedent(
    """
    import sys
    from sysboy_tray.tray.backend import load_tray, stop_icon
    from sysboy_tray.tray.gauge import GaugeState, draw_gauge
    toolkit = load_tray()
    image = draw_gauge(float(sys.argv[1]), GaugeState.LINKED, 64)
    icon_class = toolkit.Icon
    if toolkit.name == "xorg":  # as the tray app shows it: pystray's own can miss its setup
        from sysboy_tray.tray.xorg import x11_icon
        icon_class = x11_icon(toolkit.Icon)
    icon = icon_class("sysboy", image, "Sysboy test")
    def setup(icon):
        icon.visible = True
        print(toolkit.name, flush=True)
        sys.stdin.readline()
        stop_icon(icon)
    icon.run(setup)
    print("stopped", flush=True)
    """
)


@pytest.mark.parametrize("percent", [0, 50, 100])
def test_icon_docks_in_trayer_and_shows_the_needle(display: str, percent: int) -> None:
    with trayer(display):
        proc = subprocess.Popen(
            [sys.executable, "-c", ICON, str(percent)],
            env={**os.environ, "DISPLAY": display, "PYSTRAY_BACKEND": "xorg"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "xorg"
            deadline = time.monotonic() + scaled(20)
            # trayer first shows a docked icon at 1 x 1 and may move it while laying out
            while (place := docked_icon(display)) is None or place[2:] != (24, 24):
                assert time.monotonic() < deadline, f"the icon never docked at 24 x 24: {place}"
                time.sleep(0.05)
            x, y, width, height = place
            # let the icon paint itself, then read the screen
            deadline = time.monotonic() + scaled(20)
            face = FACE_COLOURS[GaugeState.LINKED]
            while True:
                shot = ImageGrab.grab(bbox=(x, y, x + width, y + height), xdisplay=display)
                if close_to(pixel(shot, width, 0.2, 270), face, 12):
                    break
                assert time.monotonic() < deadline, "the icon was never painted"
                time.sleep(0.05)
            direction = needle_direction(shot.convert("RGB"), width, face)
            assert angle_gap(direction, EXPECTED_DEG[percent]) <= 12
        finally:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            out, _err = proc.communicate(timeout=scaled(20))
        assert proc.returncode == 0
        assert "stopped" in out
