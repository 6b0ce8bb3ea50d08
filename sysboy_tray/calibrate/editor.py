"""What the calibration window does, without the window: points, live needle, save, cancel,
and the choice of needle on a meter with several.

The window shows five points (0, 25, 50, 75 and 100 % of the scale). Each holds the raw
output fraction (0..1, kept in thousandths) that puts the needle on that mark. Moving
a point drives the needle live with raw `needle` messages, at most `NEEDLE_RATE_HZ` a
second; the latest position always gets sent.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from sysboy_tray.control_client import ControlClient, DeviceCalibration
from sysboy_tray.errors import ControlError
from sysboy_tray.protocol import Point

PERCENTS = (0.0, 25.0, 50.0, 75.0, 100.0)
FULL = 1000  # a point's output in thousandths of full output
NEEDLE_RATE_HZ = 20.0


def output_at(points: tuple[Point, ...], percent: float) -> float:
    """The output fraction a calibration gives at `percent` (extended past its ends)."""
    if len(points) < 2:
        return percent / 100.0
    pairs = list(itertools.pairwise(points))
    # the segment holding `percent`; the first or last one extends past the ends
    (p0, f0), (p1, f1) = next((pair for pair in pairs if percent <= pair[1][0]), pairs[-1])
    return f0 + (f1 - f0) * (percent - p0) / (p1 - p0)


def marks_from(points: tuple[Point, ...]) -> list[int]:
    """The five marks (thousandths) of a device's calibration, or linear if it has no sense."""
    marks = [round(min(1.0, max(0.0, output_at(points, p))) * FULL) for p in PERCENTS]
    if any(b <= a for a, b in itertools.pairwise(marks)):
        return linear()
    return marks


def linear() -> list[int]:
    return [round(p / 100.0 * FULL) for p in PERCENTS]


class CalibrationEditor:
    """Five points of one needle's calibration, driving that needle through the control API."""

    def __init__(
        self,
        client: ControlClient,
        device: DeviceCalibration,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.needles_sent = 0
        self._clock = clock
        self._sent_at = -1e9
        self._edit(device)

    def _edit(self, device: DeviceCalibration) -> None:
        self.device = device
        self.marks = marks_from(device.points)
        # what Cancel puts back: the needle's calibration, or the last one saved here
        self.saved: tuple[Point, ...] = device.points
        self.last_moved: int | None = None
        self._pending: int | None = None

    @classmethod
    def open(
        cls, client: ControlClient, device_id: str | None, needle: int = 1
    ) -> CalibrationEditor:
        """Read a needle's calibration through the control API.

        Raises:
            ControlError: the device is not connected, several are and none was named, or
                it has no such needle.
        """
        return cls(client, client.calibration(device_id, needle))

    @property
    def needle(self) -> int:
        """The needle being calibrated (1..)."""
        return self.device.needle

    def switch(self, needle: int) -> None:
        """Leave this needle as it was saved (raw mode ends) and calibrate `needle` instead.

        Raises:
            ControlError: the device could not be told, or has no such needle.
        """
        if needle == self.device.needle:
            return
        self.cancel()
        self._edit(self.client.calibration(self.device.device, needle))

    @property
    def points(self) -> tuple[Point, ...]:
        return tuple((p, m / FULL) for p, m in zip(PERCENTS, self.marks, strict=True))

    @property
    def changed(self) -> bool:
        """The points differ from what the device holds."""
        return self.points != self.saved

    def bounds(self, index: int) -> tuple[int, int]:
        """How far point `index` may move: the points must keep rising."""
        low = self.marks[index - 1] + 1 if index > 0 else 0
        high = self.marks[index + 1] - 1 if index < len(self.marks) - 1 else FULL
        return low, high

    def move(self, index: int, mark: float) -> int:
        """Put point `index` at `mark` thousandths (kept between its neighbours); return it."""
        low, high = self.bounds(index)
        self.marks[index] = min(high, max(low, round(mark)))
        self.last_moved = index
        self._pending = self.marks[index]
        self.tick()
        return self.marks[index]

    def step(self, index: int, steps: int) -> int:
        """Nudge point `index` by `steps` thousandths."""
        return self.move(index, self.marks[index] + steps)

    def tick(self) -> None:
        """Send the latest needle position if one is waiting and the rate allows it."""
        if self._pending is None:
            return
        now = self._clock()
        if now - self._sent_at < 1.0 / NEEDLE_RATE_HZ:
            return
        value, self._pending = self._pending, None
        self._sent_at = now
        self.client.needle(value / FULL, self.device.device, self.device.needle)
        self.needles_sent += 1

    def reset_linear(self) -> None:
        """A straight line between the 0 % and 100 % points as they stand.

        The ends stay: on a real meter full scale is rarely at full output (the hardware
        guide puts it at 2.5 V of 3.3 V), and a reset must not pin the needle. The
        needle follows the last point moved.
        """
        low, high = self.marks[0], self.marks[-1]
        self.marks = [round(low + (high - low) * p / 100.0) for p in PERCENTS]
        if self.last_moved is not None:
            self._pending = self.marks[self.last_moved]
            self.tick()

    def sweep(self) -> None:
        """Let the device sweep its needle across the scale (with the calibration it holds)."""
        self.client.sweep(self.device.device, self.device.needle)

    def save(self) -> None:
        """Send the points to the device, wait for its ack; the app keeps a copy.

        Raises:
            ControlError: the device refused or did not answer; the text says which.
        """
        points = self.points
        self.client.calibrate(points, self.device.device, self.device.needle)
        self.saved = points

    def cancel(self) -> None:
        """Put back the calibration last saved (or the device's own) and end raw needle mode.

        Raises:
            ControlError: the device could not be told; raw mode is ended all the same.
        """
        self._pending = None
        failed: ControlError | None = None
        try:
            self.client.calibrate(self.saved, self.device.device, self.device.needle)
        except ControlError as exc:
            failed = exc
        self.client.needle(None, self.device.device, self.device.needle)
        if failed is not None:
            raise failed
