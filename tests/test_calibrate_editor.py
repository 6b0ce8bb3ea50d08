"""The calibration window's logic, without a screen, against a running app and a test meter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sysboy_tray import session
from sysboy_tray.app import App
from sysboy_tray.calibrate.editor import CalibrationEditor, marks_from, output_at
from sysboy_tray.control_client import ControlClient
from sysboy_tray.errors import ControlError
from tests.conftest import SettableSource, running_app, scaled
from tests.meter import Meter

DEVICE_POINTS = [[0, 0], [50, 0.45], [100, 0.98]]


class Clock:
    """The editor's clock, moved by the test (pacing is behaviour, not wall-clock time)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app() -> Iterator[App]:
    with running_app({"cpu": SettableSource("cpu", 30.0)}, {"metric": "cpu"}) as running:
        yield running


@pytest.fixture
def meter(app: App) -> Iterator[Meter]:
    with Meter(app.port, "dev-a", calibration=DEVICE_POINTS, name="Desk meter") as device:
        device.wait_for("cpu")
        yield device


@pytest.fixture
def client(app: App) -> Iterator[ControlClient]:
    with ControlClient.find() as control:
        yield control


def needles(meter: Meter) -> list[float | None]:
    return [m["value"] for m in meter.of_type("needle")]


def told(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the editor told the device, without the metric's heartbeats (they come any time)."""
    return [m for m in messages if m["type"] != "cpu"]


def test_five_marks_come_from_the_devices_calibration() -> None:
    assert marks_from(((0.0, 0.0), (100.0, 1.0))) == [0, 250, 500, 750, 1000]
    assert marks_from(((0.0, 0.0), (50.0, 0.45), (100.0, 0.98))) == [0, 225, 450, 715, 980]
    # a calibration that does not reach the ends is extended along its end segments
    assert output_at(((10.0, 0.1), (90.0, 0.9)), 0.0) == pytest.approx(0.0)
    assert marks_from(((10.0, 0.1), (90.0, 0.9))) == [0, 250, 500, 750, 1000]
    # one that would clamp flat at both ends cannot give five rising marks: linear
    assert marks_from(((40.0, 0.0), (60.0, 1.0))) == [0, 250, 500, 750, 1000]


def test_points_keep_rising_and_steps_are_fine(
    app: App, meter: Meter, client: ControlClient
) -> None:
    clock = Clock()
    editor = CalibrationEditor(client, client.calibration("dev-a"), clock)
    assert editor.device.name == "Desk meter" and editor.marks == [0, 225, 450, 715, 980]
    assert editor.move(2, 900) == 714  # stops just under the 75 % point
    assert editor.move(1, -50) == 1
    clock.now += 1
    assert editor.step(4, 1) == 981
    clock.now += 1
    assert editor.step(4, 100) == 1000
    assert editor.points[2] == (50.0, 0.714) and editor.changed


def test_needle_follows_the_slider_at_most_20_times_a_second(
    app: App, meter: Meter, client: ControlClient
) -> None:
    clock = Clock()
    editor = CalibrationEditor.open(client, "dev-a")
    editor._clock = clock
    editor.move(2, 460)  # the first move goes out at once
    for mark in (470, 480, 490):  # the rest within 50 ms wait, and only the last one counts
        clock.now += 0.01
        editor.move(2, mark)
    editor.tick()
    assert editor.needles_sent == 1
    clock.now += 0.05
    editor.tick()
    editor.tick()
    assert editor.needles_sent == 2
    meter.wait_for("needle", 2)
    assert needles(meter) == [0.46, 0.49]


def test_save_sends_the_points_and_cancel_puts_back_the_saved_ones(
    app: App, meter: Meter, client: ControlClient
) -> None:
    clock = Clock()
    editor = CalibrationEditor(client, client.calibration(None), clock)  # the only device
    editor.move(2, 470)
    editor.save()
    saved = ((0.0, 0.0), (25.0, 0.225), (50.0, 0.47), (75.0, 0.715), (100.0, 0.98))
    assert meter.of_type("calibration")[-1]["points"] == [list(p) for p in saved]
    assert app.store.settings.devices["dev-a"].calibration == saved
    assert not editor.changed
    clock.now += 1
    editor.reset_linear()
    assert editor.marks == [0, 245, 490, 735, 980]  # straight between the ends, which stay
    meter.wait_for("needle", 2)
    assert needles(meter) == [0.47, 0.49]  # the needle follows the last point moved
    editor.sweep()
    editor.cancel()
    meter.wait_until(lambda ms: told(ms)[-1] == {"type": "needle", "value": None})
    kinds = [m["type"] for m in meter.messages if m["type"] != "cpu"]
    assert kinds[-4:] == ["needle", "sweep", "calibration", "needle"]
    assert meter.of_type("calibration")[-1]["points"] == [list(p) for p in saved]


def test_cancel_without_a_save_restores_the_devices_own_points(
    app: App, meter: Meter, client: ControlClient
) -> None:
    editor = CalibrationEditor.open(client, "dev-a")
    editor.move(0, 30)
    editor.cancel()
    meter.wait_for("needle", 2)
    (restored,) = meter.of_type("calibration")
    assert restored["points"] == DEVICE_POINTS  # as the device had them, not five points
    assert needles(meter) == [0.03, None]


def test_cancel_that_gets_no_ack_still_ends_raw_mode(
    app: App, client: ControlClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = session.DeviceSession.command

    async def quick(self: session.DeviceSession, message: object, timeout: float = 5.0) -> None:
        await original(self, message, timeout=scaled(0.3))  # type: ignore[arg-type]

    monkeypatch.setattr(session.DeviceSession, "command", quick)
    with Meter(app.port, "dev-a", ack=False) as meter:
        meter.wait_for("cpu")
        editor = CalibrationEditor.open(client, "dev-a")
        editor.move(1, 300)
        with pytest.raises(ControlError, match="did not confirm the calibration"):
            editor.save()
        with pytest.raises(ControlError, match="did not confirm the calibration"):
            editor.cancel()
        meter.wait_until(lambda ms: told(ms)[-1] == {"type": "needle", "value": None})


def test_opening_for_a_device_that_is_not_there_is_an_error(
    app: App, client: ControlClient
) -> None:
    with pytest.raises(ControlError, match="no device is connected"):
        CalibrationEditor.open(client, None)
    with pytest.raises(ControlError, match="device 'ghost' is not connected"):
        CalibrationEditor.open(client, "ghost")
