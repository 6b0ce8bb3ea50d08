"""Devices by name: their own (from hello), or one the user keeps on the PC with `sysboy rename`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import scaled
from tests.debian import need
from tests.meter import Meter
from tests.test_control_cli import serve, sysboy, sysboy_command
from tests.xvfb import wait_for, xvfb

__all__ = ["serve"]  # the fixture, used by name

DEVICE = "02bd4e99029d"


def device_line(device_id: str) -> str:
    status = sysboy("status")
    assert status.returncode == 0, status.stderr
    return next(line for line in status.stdout.splitlines() if line.strip().startswith(device_id))


def saved_name(device_id: str) -> str | None:
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    if not settings.exists():
        return None
    devices = json.loads(settings.read_text()).get("devices", {})
    name: str | None = devices.get(device_id, {}).get("name")
    return name


def test_status_names_devices_and_rename_keeps_a_name_on_the_pc(serve: int) -> None:
    with Meter(serve, DEVICE, name="Bench") as bench, Meter(serve, "02aaaaaaaaaa") as plain:
        bench.wait_for("ram")
        plain.wait_for("ram")
        assert device_line(DEVICE).split()[:2] == [DEVICE, "Bench"]
        # no name of its own: not its id twice
        assert device_line("02aaaaaaaaaa").split()[:3] == ["02aaaaaaaaaa", "(no", "name)"]

        done = sysboy("rename", "bench", "Desk meter")  # by its name now, any case
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"device {DEVICE} is now named Desk meter"
        assert "Desk meter" in device_line(DEVICE)
        wait_for(lambda: saved_name(DEVICE) == "Desk meter", 10, "the name was not saved")

        # a name with a control character is refused in a sentence
        bad = sysboy("rename", DEVICE, "evil\x1b[2Jname")
        assert bad.returncode == 1
        assert bad.stderr.strip() == "sysboy: a device name cannot hold control characters"
        too_long = sysboy("rename", DEVICE, "x" * 33)
        assert too_long.returncode == 1 and "at most 32 characters" in too_long.stderr

        unknown = sysboy("rename", "nosuch", "X")
        assert unknown.returncode == 1
        assert "there is no device 'nosuch'" in unknown.stderr
        assert f"{DEVICE} (Desk meter)" in unknown.stderr
        assert "Traceback" not in unknown.stderr + bad.stderr

        # an empty name gives the device back its own
        cleared = sysboy("rename", DEVICE, "")
        assert cleared.stdout.strip() == f"device {DEVICE} is now named Bench"
    usage = sysboy("rename", DEVICE)
    assert usage.returncode == 2 and "--window" in usage.stderr


@pytest.fixture
def display() -> Iterator[str]:
    need("xdotool", "python3-tk")
    with xvfb() as name:
        yield name


def xdotool(display: str, *args: str) -> str:
    result = subprocess.run(
        ["xdotool", *args],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=scaled(10),
    )
    return result.stdout.strip()


def test_rename_window_types_a_name(serve: int, display: str) -> None:
    """What the tray's Rename… opens: the name now, typed over, saved with Enter."""
    with Meter(serve, DEVICE, name="Bench") as meter:
        meter.wait_for("ram")
        proc = subprocess.Popen(
            [*sysboy_command(), "rename", DEVICE, "--window"],
            env={**os.environ, "DISPLAY": display},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            window = wait_for(
                lambda: xdotool(display, "search", "--name", "^Rename meter$"),
                20,
                "the rename window never opened",
            )
            xdotool(display, "windowfocus", "--sync", window.split()[0])
            # the name now is selected: typing replaces it
            xdotool(display, "type", "--delay", "20", "Shelf")
            xdotool(display, "key", "Return")
            out, err = proc.communicate(timeout=scaled(20))
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert out.strip() == f"device {DEVICE} is now named Shelf"
        assert "Shelf" in device_line(DEVICE)


def test_rename_window_says_what_is_wrong_and_stays(serve: int, display: str) -> None:
    with Meter(serve, DEVICE) as meter:
        meter.wait_for("ram")
        proc = subprocess.Popen(
            [*sysboy_command(), "rename", DEVICE, "y" * 40, "--window"],
            env={**os.environ, "DISPLAY": display},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            window = wait_for(
                lambda: xdotool(display, "search", "--name", "^Rename meter$"),
                20,
                "the rename window never opened",
            )
            xdotool(display, "windowfocus", "--sync", window.split()[0])
            xdotool(display, "key", "Return")  # 40 characters: refused, the window stays
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(scaled(1))
            assert "(no name)" in device_line(DEVICE)
            # then a name that fits replaces it (Control-/ selects all in a Tk entry)
            xdotool(display, "key", "ctrl+slash")
            xdotool(display, "type", "--delay", "20", "Lab")
            xdotool(display, "key", "Return")
            out, err = proc.communicate(timeout=scaled(20))
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert out.strip() == f"device {DEVICE} is now named Lab"


def test_rename_from_the_x11_tray_popup(display: str) -> None:
    """The tray app under trayer: Devices ▸ the meter ▸ Rename… opens the window."""
    from tests.test_tray_popup import point_at_icon, popup_ready, shown_menus
    from tests.xvfb import tray_app

    with tray_app(display) as tray, Meter(tray.state["port"], DEVICE, name="Bench") as meter:
        meter.wait_for("cpu")
        wait_for(lambda: point_at_icon(display), 20, "cannot point at the icon")
        xdotool(display, "click", "1")
        wait_for(lambda: popup_ready(display), 20, "no menu on a click")
        # Down lights Metric, Down Devices; Right opens it on the meter, Right opens the
        # meter's menu on Metric; then Identify, Calibrate…, Rename…
        xdotool(display, "key", "--delay", "150", "Down", "Down", "Right", "Right")
        wait_for(lambda: len(shown_menus(display)) == 3, 20, "the meter's menu did not open")
        xdotool(display, "key", "--delay", "150", "Down", "Down", "Down", "Return")
        window = wait_for(
            lambda: xdotool(display, "search", "--name", "^Rename meter$"),
            30,
            "Rename… opened no window",
        )
        xdotool(display, "windowfocus", "--sync", window.split()[0])
        xdotool(display, "type", "--delay", "20", "Shelf")
        xdotool(display, "key", "Return")
        wait_for(lambda: "Shelf" in device_line(DEVICE), 20, "the name did not change")
        tray.proc.terminate()
    assert "Traceback" not in tray.stderr
