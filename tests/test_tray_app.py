"""The whole tray app (`sysboy` with no command) on a real X server with a real tray host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import ImageGrab

from sysboy_tray.config import Paths
from sysboy_tray.tray.gauge import FACE_COLOURS, GaugeState
from tests.conftest import scaled
from tests.meter import Meter
from tests.xvfb import crash_server, docked_icon, tray_app, wait_for, xvfb


def _no_output() -> None:
    # what a windowed exe starts with: no standard output, no standard error
    os.close(1)
    os.close(2)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


def test_a_display_that_goes_away_stops_the_app_in_one_sentence_and_parks() -> None:
    # the session ends, or its X server crashes, under a running app
    with xvfb() as own, tray_app(own) as tray:
        with Meter(tray.state["port"]) as meter:
            meter.wait_for("cpu")
            crash_server(own)
            meter.wait_until(
                lambda messages: {"type": "park", "reason": "quit"} in messages, timeout=10
            )
        assert tray.proc.wait(scaled(20)) == 1
    said = tray.stderr.strip()
    assert said.startswith("sysboy: the desktop's display went away") and "\n" not in said, said
    log = (Path(os.environ["SYSBOY_LOG_DIR"]) / "sysboy.log").read_text()
    assert "Traceback" not in log and "the X display closed the icon's connection" in log


def test_tray_app_docks_follows_a_device_and_quits_cleanly(display: str) -> None:
    with tray_app(display) as tray:
        app = tray.proc
        # a second launch finds the first and leaves quietly
        second = subprocess.run(
            [sys.executable, "-m", "sysboy_tray"],
            env=tray.env,
            capture_output=True,
            text=True,
            timeout=scaled(30),
        )
        assert second.returncode == 0
        assert "already running" in second.stdout
        # double-clicked again, with no console (and here no desktop for a message box)
        windowed = subprocess.run(
            [sys.executable, "-m", "sysboy_tray"],
            env={k: v for k, v in tray.env.items() if k != "DISPLAY"},
            preexec_fn=_no_output,
            timeout=scaled(30),
        )
        assert windowed.returncode == 0
        with Meter(tray.state["port"]) as meter:
            meter.wait_for("cpu")
            # linked: the face turns green
            green = FACE_COLOURS[GaugeState.LINKED]
            seen: list[str] = ["nothing"]  # the last look, for the failure message

            def face_is_green() -> bool:
                # where the icon is now: the tray host may still be laying it out
                place = docked_icon(display)
                seen[0] = f"the icon at {place}"
                if place is None or min(place[2:]) < 16:
                    return False
                x, y, width, height = place
                shot = ImageGrab.grab(bbox=(x, y, x + width, y + height), xdisplay=display)
                rgb = shot.convert("RGB")
                pixels = [rgb.getpixel((i, j)) for i in range(width) for j in range(height)]
                near = [
                    p
                    for p in pixels
                    if max(abs(a - b) for a, b in zip(p, green, strict=True)) <= 12
                ]
                seen[0] += f", {len(near)} of its {len(pixels)} pixels green"
                return len(near) > len(pixels) // 8

            try:
                wait_for(face_is_green, 20, "the icon did not turn green for a linked device")
            except AssertionError as exc:
                log = (Path(os.environ["SYSBOY_LOG_DIR"]) / "sysboy.log").read_text()
                app.send_signal(signal.SIGABRT)  # its threads' stacks: where it is stuck
                app.wait(scaled(20))
                assert app.stderr is not None
                stacks = app.stderr.read()[-6000:]
                raise AssertionError(
                    f"{exc}: last seen {seen[0]}; the app's log:\n{log}\nits stacks:\n{stacks}"
                ) from None
            app.send_signal(signal.SIGTERM)
            meter.wait_until(
                lambda messages: {"type": "park", "reason": "quit"} in messages, timeout=10
            )
        assert app.wait(scaled(20)) == 0
    assert "Traceback" not in tray.stderr
    assert not Paths.default().state_file.exists()
    log = (Path(os.environ["SYSBOY_LOG_DIR"]) / "sysboy.log").read_text()
    assert "tray backend: xorg" in log
    # the first start said where the icon is; each second start made it point at itself
    assert "telling the user: Sysboy: Sysboy is running. Its gauge icon lives" in log
    assert log.count("telling the user: Sysboy: Sysboy is already running: this is its icon") == 2
