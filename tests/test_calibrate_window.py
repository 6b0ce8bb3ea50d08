"""The real calibration window under Xvfb, driven with the X pointer (xdotool).

The window runs as `sysboy calibrate` does from the tray: its own process, talking to a
running app through the control API; a test meter (a real websockets client) sees what
the needle is told.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageGrab

from sysboy_tray import session
from sysboy_tray.app import App
from tests.conftest import SettableSource, running_app, scaled
from tests.debian import needs
from tests.meter import Meter
from tests.xvfb import xvfb

DEVICE_POINTS = [[0, 0], [50, 0.45], [100, 0.98]]

pytestmark = needs("xvfb", "xdotool", "python3-tk")


@pytest.fixture
def display() -> Iterator[str]:
    """A private X server; yields its DISPLAY."""
    with xvfb(800, 600) as name:
        yield name


@pytest.fixture
def app() -> Iterator[App]:
    sources = {"cpu": SettableSource("cpu", 30.0)}
    with running_app(sources, {"metric": "cpu"}, interval=0.2) as running:
        yield running


def told(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the device was told, without the metric's own samples (heartbeats come any time)."""
    return [m for m in messages if m["type"] not in ("welcome", "cpu")]


def needle_at(meter: Meter, mark: int, **needle: int) -> bool:
    """The device's needle was last told to stand at `mark` (thousandths of full scale)."""
    raw = meter.of_type("needle")
    return bool(raw) and raw[-1] == {"type": "needle", "value": mark / 1000, **needle}


def laid_out(state: dict[str, Any]) -> bool:
    """The window is on screen and its sliders have their full width."""
    return bool(state["mapped"]) and all(s["x1"] - s["x0"] > 100 for s in state["sliders"])


class Window:
    """The `sysboy calibrate` process, its probe file, and the X pointer."""

    def __init__(self, display: str, probe: Path, device: str) -> None:
        self.display = display
        self.probe = probe
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sysboy_tray", "calibrate", device],
            env={**os.environ, "DISPLAY": display, "SYSBOY_CALIBRATE_PROBE": str(probe)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # a loaded machine takes seconds to start Python, Tk and the window
        self.state = self.wait_until(laid_out, timeout=60)

    def read(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.probe.read_text())
            return state
        except (FileNotFoundError, ValueError):
            return None

    def wait_until(self, check: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the window ended: {self.proc.communicate()}")
            state = self.read()
            if state is not None and check(state):
                self.state = state
                return state
            time.sleep(0.05)
        raise AssertionError(f"the window never got there; last state: {self.read()}")

    def xdotool(self, *args: str) -> None:
        subprocess.run(
            ["xdotool", *args],
            env={**os.environ, "DISPLAY": self.display},
            check=True,
            timeout=scaled(10),
        )

    def click(self, box: list[int]) -> None:
        x, y, width, height = box
        self.xdotool("mousemove", str(x + width // 2), str(y + height // 2), "click", "1")

    def drag(self, index: int, to_mark: int) -> None:
        """Grab slider `index` by its thumb and drag it to `to_mark` with the pointer."""
        slider = self.state["sliders"][index]
        span = slider["x1"] - slider["x0"]
        start = slider["x0"] + span * self.state["marks"][index] // 1000
        end = slider["x0"] + span * to_mark // 1000
        y = str(slider["y"])
        steps = [str(start + (end - start) * k // 4) for k in range(1, 5)]
        moves: list[str] = []
        for x in steps:
            moves += ["mousemove", x, y, "sleep", "0.05"]
        self.xdotool("mousemove", str(start), y, "mousedown", "1", *moves, "mouseup", "1")

    def screenshot(self, path: Path) -> None:
        x, y, width, height = self.state["window"]
        ImageGrab.grab(bbox=(x, y, x + width, y + height), xdisplay=self.display).save(path)

    def end(self) -> int:
        try:
            return self.proc.wait(scaled(15))
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def screenshot_dir(tmp_path: Path) -> Path:
    folder = os.environ.get("SYSBOY_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_sliders_drive_the_needle_then_save_then_cancel(
    app: App, display: str, tmp_path: Path
) -> None:
    with Meter(app.port, "dev-a", calibration=DEVICE_POINTS, name="Desk meter") as meter:
        meter.wait_for("cpu")
        window = Window(display, tmp_path / "probe.json", "dev-a")
        assert window.state["marks"] == [0, 225, 450, 715, 980]

        window.drag(2, 600)
        # the drag's end: needle positions are paced, so one seen mid-drag may never be sent
        state = window.wait_until(
            lambda s: s["marks"][2] >= 560 and needle_at(meter, s["marks"][2])
        )
        for _ in range(3):
            window.click(state["buttons"]["plus"][4])
        state = window.wait_until(lambda s: s["marks"][4] == 983)
        meter.wait_until(lambda ms: {"type": "needle", "value": 0.983} in ms)
        assert len(meter.of_type("needle")) >= 2
        window.screenshot(screenshot_dir(tmp_path) / "calibration-window.png")

        window.click(state["buttons"]["save"])
        state = window.wait_until(lambda s: s["status"].startswith("Saved to the device"))
        points = [[p, m / 1000] for p, m in zip((0, 25, 50, 75, 100), state["marks"], strict=True)]
        kinds = [m["type"] for m in meter.messages if m["type"] not in ("welcome", "cpu")]
        assert kinds[-1] == "calibration" and set(kinds[:-1]) == {"needle"}
        assert meter.of_type("calibration")[-1]["points"] == points
        assert app.store.settings.devices["dev-a"].calibration == tuple(map(tuple, points))
        window.screenshot(screenshot_dir(tmp_path) / "calibration-saved.png")

        window.drag(0, 40)
        state = window.wait_until(lambda s: s["marks"][0] > 0)
        window.click(state["buttons"]["cancel"])
        assert window.end() == 0
        meter.wait_until(lambda ms: told(ms)[-1] == {"type": "needle", "value": None})
        # Cancel puts back what was last saved, not the slider moved after it
        assert meter.of_type("calibration")[-1]["points"] == points
        assert [m["type"] for m in told(meter.messages)[-2:]] == ["calibration", "needle"]


def test_cancel_restores_the_previous_calibration(app: App, display: str, tmp_path: Path) -> None:
    with Meter(app.port, "dev-a", calibration=DEVICE_POINTS) as meter:
        meter.wait_for("cpu")
        window = Window(display, tmp_path / "probe.json", "dev-a")
        window.drag(3, 900)
        state = window.wait_until(lambda s: s["marks"][3] > 800)
        window.click(state["buttons"]["reset"])
        # straight between the device's own ends (0 and 0.98), which stay
        state = window.wait_until(lambda s: s["marks"] == [0, 245, 490, 735, 980])
        window.click(state["buttons"]["sweep"])
        meter.wait_for("sweep")
        window.click(state["buttons"]["cancel"])
        assert window.end() == 0
        meter.wait_until(lambda ms: told(ms)[-1] == {"type": "needle", "value": None})
        (restored,) = meter.of_type("calibration")
        assert restored["points"] == DEVICE_POINTS
        # the copy on the PC is the device's own calibration again
        kept = app.store.settings.devices["dev-a"].calibration
        assert [list(p) for p in kept] == DEVICE_POINTS


def test_the_needle_picker_drives_and_saves_the_chosen_needle(
    app: App, display: str, tmp_path: Path
) -> None:
    with Meter(app.port, "dev-a", calibration=DEVICE_POINTS, needles=2) as meter:
        meter.wait_for("cpu")
        window = Window(display, tmp_path / "probe.json", "dev-a")
        state = window.state
        assert state["needle"] == 1 and len(state["buttons"]["needles"]) == 2
        window.click(state["buttons"]["needles"][1])
        # the switch is done once the window says so (it is not busy a moment before that)
        state = window.wait_until(lambda s: s["status"].startswith("Needle 2") and not s["busy"])
        assert state["needle"] == 2
        assert state["marks"] == [0, 225, 450, 715, 980]  # needle 2's own calibration
        # leaving needle 1 put it back as the device holds it and ended its raw mode (that
        # last is not confirmed by the device: it may still be on its way)
        meter.wait_for("needle")
        assert meter.of_type("calibration") == [
            {"type": "calibration", "points": DEVICE_POINTS, "needle": 1}
        ]
        assert meter.of_type("needle") == [{"type": "needle", "value": None, "needle": 1}]

        window.drag(2, 600)
        state = window.wait_until(
            lambda s: s["marks"][2] >= 560 and needle_at(meter, s["marks"][2], needle=2)
        )
        window.screenshot(screenshot_dir(tmp_path) / "calibration-needle-2.png")
        window.click(state["buttons"]["save"])
        state = window.wait_until(lambda s: s["status"].startswith("Saved to the device"))
        points = [[p, m / 1000] for p, m in zip((0, 25, 50, 75, 100), state["marks"], strict=True)]
        assert meter.of_type("calibration")[-1] == {
            "type": "calibration",
            "points": points,
            "needle": 2,
        }
        # every raw position after the switch went to needle 2, none to needle 1
        raw = meter.of_type("needle")[1:]
        assert raw and all(m["needle"] == 2 for m in raw)
        kept = app.store.settings.devices["dev-a"]
        assert kept.needle(2).calibration == tuple(map(tuple, points))
        assert [list(p) for p in kept.needle(1).calibration] == DEVICE_POINTS
        window.click(state["buttons"]["cancel"])
        assert window.end() == 0
        meter.wait_until(lambda ms: told(ms)[-1] == {"type": "needle", "value": None, "needle": 2})


def test_device_that_is_not_connected_is_said_in_words(
    app: App, display: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sysboy_tray", "calibrate", "ghost"],
        env={k: v for k, v in os.environ.items() if k != "DISPLAY"},
        capture_output=True,
        text=True,
        timeout=scaled(30),
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "sysboy: device 'ghost' is not connected"


def test_a_device_that_does_not_confirm_is_shown_in_the_window(
    app: App, display: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = session.DeviceSession.command

    async def quick(self: session.DeviceSession, message: object, timeout: float = 5.0) -> None:
        await original(self, message, timeout=scaled(0.5))  # type: ignore[arg-type]

    monkeypatch.setattr(session.DeviceSession, "command", quick)
    with Meter(app.port, "dev-a", calibration=DEVICE_POINTS, ack=False) as meter:
        meter.wait_for("cpu")
        window = Window(display, tmp_path / "probe.json", "dev-a")
        window.click(window.state["buttons"]["minus"][1])
        window.click(window.state["buttons"]["save"])
        state = window.wait_until(lambda s: "did not confirm" in s["status"])
        assert not state["busy"]
        window.screenshot(screenshot_dir(tmp_path) / "calibration-error.png")
        window.click(state["buttons"]["cancel"])
        # the device was not told either: the window says so and Cancel becomes Close
        state = window.wait_until(lambda s: s["cancel"] == "Close" and not s["busy"])
        assert "did not confirm" in state["status"]
        meter.wait_until(lambda ms: told(ms)[-1] == {"type": "needle", "value": None})
        window.click(state["buttons"]["cancel"])  # now "Close": it just closes
        assert window.end() == 1
