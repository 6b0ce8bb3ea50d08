"""The tray gauge, checked by its pixels: needle direction, state colours, redraw rule."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from sysboy_tray.tray.gauge import (
    FACE_COLOURS,
    NEEDLE_COLOUR,
    GaugeFace,
    GaugeState,
    draw_gauge,
    needs_redraw,
)

# The look the icon promises: 0 % points to lower left, 50 % straight up, 100 % to lower
# right, over a 240 degree scale. Written out here, not taken from the module.
EXPECTED_DEG = {0: 210.0, 50: 90.0, 100: -30.0}


def luminance(rgb: tuple[int, ...]) -> float:
    r, g, b = rgb[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def pixel(image: Image.Image, size: int, radius: float, degrees: float) -> tuple[int, ...]:
    """The pixel at `radius` (a fraction of the icon size) from the centre, at an angle."""
    rad = math.radians(degrees)
    x = size / 2 + radius * size * math.cos(rad)
    y = size / 2 - radius * size * math.sin(rad)
    value: tuple[int, ...] = image.getpixel((int(x), int(y)))  # type: ignore[assignment]
    return value


def needle_direction(image: Image.Image, size: int, face: tuple[int, int, int]) -> float:
    """The needle's angle in degrees, from the dark mass between the hub and the ticks."""
    face_lum = luminance(face)
    sx = sy = 0.0
    for y in range(size):
        for x in range(size):
            dx, dy = x + 0.5 - size / 2, size / 2 - (y + 0.5)
            if not 0.14 * size <= math.hypot(dx, dy) <= 0.22 * size:
                continue
            weight = max(0.0, face_lum - luminance(image.getpixel((x, y))))  # type: ignore[arg-type]
            sx += weight * dx
            sy += weight * dy
    assert sx or sy, "no needle drawn"
    return math.degrees(math.atan2(sy, sx))


def angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def close_to(rgb: tuple[int, ...], want: tuple[int, int, int], tolerance: int = 8) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(rgb[:3], want, strict=True))


@pytest.mark.parametrize("size", [16, 32, 64])
@pytest.mark.parametrize("percent", [0, 50, 100])
def test_needle_points_where_the_percent_says(size: int, percent: int) -> None:
    state = GaugeState.LINKED
    image = draw_gauge(percent, state, size)
    face = FACE_COLOURS[state]
    want = EXPECTED_DEG[percent]

    # the dark mass points the right way, to within a pixel's worth of angle
    tolerance = {16: 12.0, 32: 6.0, 64: 3.0}[size]
    assert angle_gap(needle_direction(image, size, face), want) <= tolerance

    # along the needle: dark; a quarter turn either side at the same radius: the face
    dark_limit = (luminance(NEEDLE_COLOUR) + luminance(face)) / 2
    radii = [0.18, 0.22] if size == 16 else [0.16, 0.2, 0.24]
    for radius in radii:
        assert luminance(pixel(image, size, radius, want)) < dark_limit, (radius, want)
        for away in (want - 90, want + 90):
            assert close_to(pixel(image, size, radius, away), face), (radius, away)


@pytest.mark.parametrize("state", list(GaugeState))
@pytest.mark.parametrize("size", [16, 32])
def test_face_colour_follows_state(state: GaugeState, size: int) -> None:
    image = draw_gauge(50, state, size)
    # below the hub, between the scale's ends: always face, whatever the needle does
    assert close_to(pixel(image, size, 0.2, 270), FACE_COLOURS[state])
    # the corners stay transparent, so the icon sits on any taskbar
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]


def test_the_three_states_look_different() -> None:
    colours = set(FACE_COLOURS.values())
    assert len(colours) == 3
    grey, green, amber = (FACE_COLOURS[s] for s in GaugeState)
    assert max(grey) - min(grey) < 20  # grey has no hue
    assert green[1] > green[0] and green[1] > green[2]
    assert amber[0] > amber[1] > amber[2]


def test_scale_lights_up_to_the_value() -> None:
    # the scale arc at the 75 % mark: bright when the value is past it, dim when below
    size, radius, deg_75 = 64, 0.34, 210.0 - 240.0 * 0.75
    full = draw_gauge(100, GaugeState.LINKED, size)
    empty = draw_gauge(10, GaugeState.LINKED, size)
    assert luminance(pixel(full, size, radius, deg_75)) > 230
    assert luminance(pixel(empty, size, radius, deg_75)) < luminance(
        FACE_COLOURS[GaugeState.LINKED]
    )


def test_out_of_range_values_pin_the_needle() -> None:
    assert (
        draw_gauge(150, GaugeState.LINKED, 32).tobytes()
        == draw_gauge(100, GaugeState.LINKED, 32).tobytes()
    )
    rest = draw_gauge(0, GaugeState.UNAVAILABLE, 32).tobytes()
    assert draw_gauge(None, GaugeState.UNAVAILABLE, 32).tobytes() == rest
    assert draw_gauge(float("nan"), GaugeState.UNAVAILABLE, 32).tobytes() == rest


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="8 x 8"):
        draw_gauge(50, GaugeState.LINKED, 4)


@pytest.mark.parametrize(
    ("shown", "wanted", "redraw"),
    [
        (None, GaugeFace(0, GaugeState.NO_DEVICE), True),
        (GaugeFace(50, GaugeState.LINKED), GaugeFace(50, GaugeState.LINKED), False),
        (GaugeFace(50, GaugeState.LINKED), GaugeFace(50.9, GaugeState.LINKED), False),
        (GaugeFace(50, GaugeState.LINKED), GaugeFace(49.1, GaugeState.LINKED), False),
        (GaugeFace(50, GaugeState.LINKED), GaugeFace(51, GaugeState.LINKED), True),
        (GaugeFace(50, GaugeState.LINKED), GaugeFace(48.5, GaugeState.LINKED), True),
        (GaugeFace(50, GaugeState.LINKED), GaugeFace(50, GaugeState.NO_DEVICE), True),
        (GaugeFace(None, GaugeState.UNAVAILABLE), GaugeFace(0.4, GaugeState.UNAVAILABLE), False),
        (GaugeFace(None, GaugeState.UNAVAILABLE), GaugeFace(5, GaugeState.UNAVAILABLE), True),
        (GaugeFace(100, GaugeState.LINKED), GaugeFace(140, GaugeState.LINKED), False),
    ],
)
def test_redraw_only_on_a_visible_change(
    shown: GaugeFace | None, wanted: GaugeFace, redraw: bool
) -> None:
    assert needs_redraw(shown, wanted) is redraw


def test_slow_drift_still_redraws() -> None:
    # compared with what is shown, not with the last sample: 0.4 % steps add up
    shown = GaugeFace(20.0, GaugeState.LINKED)
    redraws = 0
    for step in range(1, 11):
        wanted = GaugeFace(20.0 + 0.4 * step, GaugeState.LINKED)
        if needs_redraw(shown, wanted):
            shown = wanted
            redraws += 1
    assert redraws == 3  # at 21.2, 22.4 and 23.6 %
    assert shown.percent == pytest.approx(23.6)
