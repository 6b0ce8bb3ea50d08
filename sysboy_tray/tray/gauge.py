"""The tray icon: a small gauge drawn with Pillow, its needle at the metric's percent."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]

# The scale runs clockwise from lower left (0 %) over the top (50 %) to lower right (100 %);
# angles are counter-clockwise from 3 o'clock, as in maths.
SCALE_START_DEG = 210.0
SCALE_SWEEP_DEG = 240.0
# Needle moves smaller than this (in percent of full scale) do not redraw the icon.
REDRAW_STEP = 1.0

NEEDLE_COLOUR: RGB = (20, 20, 20)
SCALE_COLOUR: RGB = (255, 255, 255)


class GaugeState(enum.Enum):
    """What the face colour tells: is a device linked, can the metric be read."""

    NO_DEVICE = "no device"
    LINKED = "linked"
    UNAVAILABLE = "metric unavailable"


FACE_COLOURS: dict[GaugeState, RGB] = {
    GaugeState.NO_DEVICE: (138, 143, 152),
    GaugeState.LINKED: (46, 170, 82),
    GaugeState.UNAVAILABLE: (240, 160, 32),
}


def clamp_percent(percent: float | None) -> float:
    """The needle position for a value: 0 to 100; no value rests the needle at 0."""
    if percent is None or not math.isfinite(percent):
        return 0.0
    return min(100.0, max(0.0, percent))


def needle_angle(percent: float | None) -> float:
    """The needle's angle in degrees (counter-clockwise from 3 o'clock)."""
    return SCALE_START_DEG - SCALE_SWEEP_DEG * clamp_percent(percent) / 100.0


@dataclass(frozen=True)
class GaugeFace:
    """What the icon shows: the needle position and the state colour."""

    percent: float | None
    state: GaugeState


def needs_redraw(shown: GaugeFace | None, wanted: GaugeFace) -> bool:
    """True when the icon must be drawn again: state changed or needle moved >= 1 %."""
    if shown is None or shown.state != wanted.state:
        return True
    moved = abs(clamp_percent(wanted.percent) - clamp_percent(shown.percent))
    return moved >= REDRAW_STEP


def _darker(colour: RGB, factor: float) -> RGB:
    r, g, b = colour
    return (round(r * factor), round(g * factor), round(b * factor))


def _polar(centre: float, radius: float, degrees: float) -> tuple[float, float]:
    rad = math.radians(degrees)
    return (centre + radius * math.cos(rad), centre - radius * math.sin(rad))


def _arc(
    draw: ImageDraw.ImageDraw,
    centre: float,
    radius: float,
    width: float,
    from_deg: float,
    to_deg: float,
    colour: RGB,
) -> None:
    """A thick arc from one scale angle to another, with round ends."""
    if from_deg - to_deg <= 0:
        return
    box = (centre - radius, centre - radius, centre + radius, centre + radius)
    # Pillow measures angles clockwise from 3 o'clock.
    draw.arc(box, -from_deg, -to_deg, fill=colour, width=round(width))
    mid = radius - width / 2
    for deg in (from_deg, to_deg):
        x, y = _polar(centre, mid, deg)
        r = width / 2
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def draw_gauge(percent: float | None, state: GaugeState, size: int = 64) -> Image.Image:
    """The gauge as an RGBA image of `size` x `size` pixels.

    Drawn large and averaged down (a box filter: exact coverage, no ringing), with lines
    kept a pixel or two wide at the final size, so it stays readable at 16 px.
    """
    if size < 8:
        raise ValueError("the gauge needs at least 8 x 8 pixels")
    scale = max(4, math.ceil(256 / size))
    n = size * scale
    px = float(scale)  # one final pixel, in canvas units
    image = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    face = FACE_COLOURS[state]
    centre = n / 2

    rim = max(0.035 * n, 1.0 * px)
    draw.ellipse((0, 0, n - 1, n - 1), fill=_darker(face, 0.55))
    draw.ellipse((rim, rim, n - 1 - rim, n - 1 - rim), fill=face)

    # The scale: a dim track, bright up to the value, so the reading shows even when tiny.
    track_r = 0.40 * n
    track_w = max(0.10 * n, 2.0 * px)
    value_deg = needle_angle(percent)
    end_deg = SCALE_START_DEG - SCALE_SWEEP_DEG
    _arc(draw, centre, track_r, track_w, SCALE_START_DEG, end_deg, _darker(face, 0.7))
    _arc(draw, centre, track_r, track_w, SCALE_START_DEG, value_deg, SCALE_COLOUR)

    if size >= 48:
        for tick in (0, 25, 50, 75, 100):
            deg = needle_angle(tick)
            inner = _polar(centre, track_r - track_w - 0.06 * n, deg)
            outer = _polar(centre, track_r - track_w - 0.01 * n, deg)
            draw.line((inner, outer), fill=_darker(face, 0.45), width=round(0.025 * n))

    needle_w = max(0.055 * n, 1.7 * px)
    tip = _polar(centre, track_r - 0.02 * n, value_deg)
    draw.line(((centre, centre), tip), fill=NEEDLE_COLOUR, width=round(needle_w))
    r = needle_w / 2
    draw.ellipse((tip[0] - r, tip[1] - r, tip[0] + r, tip[1] + r), fill=NEEDLE_COLOUR)
    hub = max(0.075 * n, 1.6 * px)
    draw.ellipse((centre - hub, centre - hub, centre + hub, centre + hub), fill=NEEDLE_COLOUR)

    return image.resize((size, size), Image.Resampling.BOX)
