"""The simulated meter's face as plain shapes: a pure function of needle, label and LED.

The Tk view only paints the shapes, so the face can be checked without a display.
Angles are in degrees, counter-clockwise from 3 o'clock, as in maths; screen y grows down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

WIDTH = 440
HEIGHT = 320
PIVOT = (WIDTH / 2, 258.0)  # the needle turns here, under the movement's cover
SCALE_RADIUS = 196.0
# A panel meter's scale spans about 100 degrees, symmetric about straight up.
SCALE_START_DEG = 140.0
SCALE_SWEEP_DEG = 100.0
FULL_SCALE = 100  # the printed scale: 0 to 100

BEZEL = "#1c1f24"
FACE = "#f3eedf"
INK = "#22252a"
FAINT_INK = "#8a8676"
NEEDLE = "#c0281e"  # used by nothing else, so a screenshot can find the needle
BAND = "#2a2e35"
BAND_TEXT = "#d6d9de"
LED_ON = "#49e36b"
LED_ON_GLOW = "#2f8f47"
LED_OFF = "#1e3b26"

STATE_WORDS = {
    "": "starting",
    "portal": "setup portal open",
    "joining": "joining Wi-Fi",
    "discovering": "looking for the PC",
    "linked": "linked",
    "nodata": "linked, nothing to show",
    "off": "off",
    "stopped": "firmware stopped",
}

Point = tuple[float, float]
Box = tuple[float, float, float, float]
Anchor = Literal["center", "w", "e"]


@dataclass(frozen=True)
class Line:
    """A polyline."""

    points: tuple[Point, ...]
    colour: str
    width: float = 1.0


@dataclass(frozen=True)
class Polygon:
    """A filled polygon."""

    points: tuple[Point, ...]
    fill: str


@dataclass(frozen=True)
class Rect:
    """A filled rectangle, optionally outlined."""

    box: Box
    fill: str
    outline: str = ""
    width: float = 0.0


@dataclass(frozen=True)
class Oval:
    """A filled ellipse in its bounding box."""

    box: Box
    fill: str
    outline: str = ""
    width: float = 0.0


@dataclass(frozen=True)
class Text:
    """Text centred on `at` unless `anchor` says otherwise (Tk anchors: "w", "e", ...)."""

    at: Point
    text: str
    colour: str
    size: int
    bold: bool = False
    anchor: Anchor = "center"


Shape = Line | Polygon | Rect | Oval | Text


def clamp_fraction(fraction: float) -> float:
    """The needle's reach: 0 to 1 of full scale; anything else (NaN too) is pinned."""
    if not math.isfinite(fraction) or fraction <= 0.0:
        return 0.0
    return min(fraction, 1.0)


def needle_angle(fraction: float) -> float:
    """The needle's angle in degrees for an output `fraction` of full scale."""
    return SCALE_START_DEG - SCALE_SWEEP_DEG * clamp_fraction(fraction)


def polar(radius: float, degrees: float, centre: Point = PIVOT) -> Point:
    """The screen point `radius` away from `centre` at `degrees`."""
    rad = math.radians(degrees)
    return (centre[0] + radius * math.cos(rad), centre[1] - radius * math.sin(rad))


def _arc(radius: float, start: float, sweep: float, steps: int = 60) -> tuple[Point, ...]:
    return tuple(polar(radius, start - sweep * i / steps) for i in range(steps + 1))


def _scale() -> list[Shape]:
    shapes: list[Shape] = [
        Line(_arc(SCALE_RADIUS, SCALE_START_DEG, SCALE_SWEEP_DEG), INK, 2),
        # the last fifth in a thin red-brown band, like a printed overload zone
        Line(
            _arc(SCALE_RADIUS + 4, SCALE_START_DEG - SCALE_SWEEP_DEG * 0.8, SCALE_SWEEP_DEG * 0.2),
            "#9b4a3c",
            4,
        ),
    ]
    for value in range(0, FULL_SCALE + 1, 2):
        angle = needle_angle(value / FULL_SCALE)
        if value % 10 == 0:
            inner, width = SCALE_RADIUS - 16, 2.0
        elif value % 5 == 0:
            inner, width = SCALE_RADIUS - 11, 1.5
        else:
            inner, width = SCALE_RADIUS - 7, 1.0
        shapes.append(Line((polar(inner, angle), polar(SCALE_RADIUS, angle)), INK, width))
        if value % 10 == 0:
            # outside the arc, as printed on panel meters: the needle never hides a number
            shapes.append(Text(polar(SCALE_RADIUS + 22, angle), str(value), INK, 11, bold=True))
    return shapes


def _needle(fraction: float) -> list[Shape]:
    angle = needle_angle(fraction)
    tip = polar(SCALE_RADIUS + 4, angle)
    return [Line((PIVOT, tip), NEEDLE, 3)]


def _led(led: str, lit: bool) -> list[Shape]:
    centre = (34.0, HEIGHT - 24.0)
    shapes: list[Shape] = []
    if lit:
        shapes.append(Oval(_circle(centre, 10), LED_ON_GLOW))
    shapes.append(Oval(_circle(centre, 6), LED_ON if lit else LED_OFF, "#0d0f12", 1))
    words = STATE_WORDS.get(led, led)
    shapes.append(Text((52.0, centre[1]), words, BAND_TEXT, 11, anchor="w"))
    return shapes


def _circle(centre: Point, radius: float) -> Box:
    return (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius)


def _reading(fraction: float) -> str:
    return f"{clamp_fraction(fraction) * 100:.1f} %"


def meter_face(fraction: float, label: str, led: str, lit: bool = True) -> list[Shape]:
    """Every shape of the face, back to front.

    Args:
        fraction: the output, 0 to 1 of full scale (as the firmware's `needle` lines say).
        label: the shown metric's name ("" before the PC named one).
        led: the LED's pattern, which is the device's state (`linked`, `discovering`, ...).
        lit: whether the blinking LED is on at this instant.
    """
    band_top = HEIGHT - 48.0
    cover_top = band_top - 24
    return [
        Rect((0, 0, WIDTH, HEIGHT), BEZEL),
        Rect((14, 14, WIDTH - 14, band_top), FACE, "#0f1114", 2),
        Text((30.0, 32.0), "SYSBOY 2000", FAINT_INK, 8, bold=True, anchor="w"),
        Text((WIDTH / 2, 196.0), label, INK, 17, bold=True),
        Text((WIDTH / 2, 218.0), "% of full scale", FAINT_INK, 9),
        *_scale(),
        *_needle(fraction),
        # the movement's cover hides the needle's root, as on a real panel meter
        Polygon(_half_disc(PIVOT, 30), BAND),
        Rect((15, cover_top, WIDTH - 15, band_top), BAND),
        Oval(_circle(PIVOT, 5), "#4a4f57"),
        Rect((0, band_top, WIDTH, HEIGHT), BEZEL),
        *_led(led, lit),
        Text((WIDTH - 24.0, HEIGHT - 24.0), _reading(fraction), BAND_TEXT, 11, anchor="e"),
    ]


def _half_disc(centre: Point, radius: float) -> tuple[Point, ...]:
    return tuple(polar(radius, 180.0 * i / 24, centre) for i in range(25))
