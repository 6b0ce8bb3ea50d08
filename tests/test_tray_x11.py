"""The plain X11 icon in trayer: drawn at the tray's size without fringes, and never collapsing."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageGrab

from sysboy_tray.tray.gauge import FACE_COLOURS, GaugeState, draw_gauge
from sysboy_tray.tray.xorg import icon_box, over
from tests.conftest import scaled
from tests.console import Console
from tests.test_gauge import close_to
from tests.xvfb import docked_icon, tray_app, trayer, wait_for, xvfb

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="X11 tray icon")

SIZES = (16, 22, 24, 32, 48)
# trayer gives its icons the panel's height less a pixel above and below
PANEL_MARGIN = 2
RIM_FACTOR = 0.55  # the rim is the face colour darkened so (gauge.py)


def rim(state: GaugeState) -> tuple[int, int, int]:
    r, g, b = FACE_COLOURS[state]
    return (round(r * RIM_FACTOR), round(g * RIM_FACTOR), round(b * RIM_FACTOR))


def between(rgb: tuple[int, int, int], a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """Each channel within the two colours' range (give or take rounding)."""
    return all(min(p, q) - 6 <= c <= max(p, q) + 6 for c, p, q in zip(rgb, a, b, strict=True))


# -- the drawing itself ----------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("state", list(GaugeState))
def test_outside_the_dial_every_pixel_is_transparent(size: int, state: GaugeState) -> None:
    image = draw_gauge(63, state, size)
    assert image.size == (size, size) and image.mode == "RGBA"
    centre = size / 2
    edge = 0
    for y, x in itertools.product(range(size), repeat=2):
        r, g, b, a = image.getpixel((x, y))  # type: ignore[misc]
        distance = math.hypot(x + 0.5 - centre, y + 0.5 - centre)
        if distance > centre + math.sqrt(0.5):  # no part of the pixel touches the dial
            assert a == 0, f"{size} px: pixel {x},{y} outside the dial has alpha {a}"
        elif distance > centre - 1 and a >= 32:
            # a pixel on the edge is rim (and face) colour, partly covered: never a stray one
            edge += 1
            assert between((r, g, b), rim(state), FACE_COLOURS[state]), f"{x},{y}: {r, g, b}"
    assert edge >= size  # the edge was looked at


def test_a_square_icon_fits_any_window() -> None:
    assert icon_box(24, 30) == (0, 3, 24)
    assert icon_box(30, 24) == (3, 0, 24)
    assert icon_box(48, 48) == (0, 0, 48)
    background = Image.new("RGB", (24, 30), (1, 2, 3))
    shown = over(background, draw_gauge(50, GaugeState.LINKED, 24), 0, 3)
    assert shown.size == (24, 30)
    assert shown.getpixel((0, 0)) == (1, 2, 3)  # a transparent corner shows the background
    assert shown.getpixel((12, 3 + 3)) != (1, 2, 3)


# -- in a real tray ----------------------------------------------------------------------

ICON = textwrap.dedent(
    """
    import sys
    from sysboy_tray.tray.backend import load_tray, stop_icon
    from sysboy_tray.tray.gauge import GaugeState, draw_gauge
    from sysboy_tray.tray.xorg import x11_icon
    toolkit = load_tray()
    icon = x11_icon(toolkit.Icon)("sysboy", draw_gauge(60, GaugeState.LINKED), "Sysboy test")
    icon.paint = lambda side: draw_gauge(60, GaugeState.LINKED, side)
    def setup(icon):
        icon.visible = True
        print(toolkit.name, flush=True)
        sys.stdin.readline()
        stop_icon(icon)
    icon.run(setup)
    """
)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


def screenshot(display: str, size: int) -> tuple[Image.Image, tuple[int, int, int]]:
    """The icon docked in a panel `size` + 2 px high once painted, and the panel's colour."""
    with trayer(display, height=size + PANEL_MARGIN):
        proc = subprocess.Popen(
            [sys.executable, "-c", ICON],
            env={**os.environ, "DISPLAY": display, "PYSTRAY_BACKEND": "xorg"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "xorg"
            # docked first at 24 x 24 (pystray's ask), then at the square the panel gives
            place = wait_for(
                lambda: (p := docked_icon(display)) and p[2:] == (size, size) and p,
                20,
                f"the icon never docked at {size} x {size}",
            )
            x, y, width, height = place
            face = FACE_COLOURS[GaugeState.LINKED]

            def grab() -> Image.Image:
                shot = ImageGrab.grab(bbox=(x - 1, y, x + width, y + height), xdisplay=display)
                return shot.convert("RGB")

            def painted() -> Image.Image | None:
                rgb = grab()
                centre = rgb.getpixel((1 + size // 2, size * 3 // 4))
                # drawn over the panel: a drawing made before the tray showed the window has
                # no panel to draw over yet, and the one made when it shows it comes a moment
                # later (a corner, outside the dial, is the panel's once that one is up)
                corner, panel = rgb.getpixel((1, 0)), rgb.getpixel((0, size // 2))
                done = close_to(centre, face, 12) and corner == panel  # type: ignore[arg-type]
                if not done:
                    return None
                # and settled, where it was found: a grab taken while the tray still lays the
                # window out (or while the icon redraws for its new size) is followed by
                # another drawing
                time.sleep(0.3)
                settled = grab().tobytes() == rgb.tobytes() and docked_icon(display) == place
                return rgb if settled else None

            shot = wait_for(painted, 20, "the icon was never painted over the panel")
            # the panel, just left of the icon
            panel = shot.getpixel((0, size // 2))
            assert isinstance(panel, tuple)
            return shot.crop((1, 0, 1 + size, size)), (panel[0], panel[1], panel[2])
        finally:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            proc.communicate(timeout=scaled(20))


def test_icon_in_trayer_at_each_size_has_clean_edges(display: str) -> None:
    """At 16, 22, 24, 32 and 48 px: the screen shows exactly the drawing over the panel."""
    for size in SIZES:
        shot, panel = screenshot(display, size)
        drawn = draw_gauge(60, GaugeState.LINKED, size)
        expected = over(Image.new("RGB", (size, size), panel), drawn, 0, 0)
        fringe = [
            (x, y, shot.getpixel((x, y)))
            for y, x in itertools.product(range(size), repeat=2)
            if drawn.getpixel((x, y))[3] == 0 and shot.getpixel((x, y)) != panel  # type: ignore[index]
        ]
        assert not fringe, f"{size} px: pixels outside the gauge are not the panel's: {fringe}"
        difference = ImageChops.difference(shot, expected).getextrema()
        worst = max(hi for _lo, hi in difference)  # type: ignore[misc,union-attr]
        assert worst <= 2, f"{size} px: the screen differs from the drawing by {worst}"


def test_a_moving_metric_for_a_minute_never_collapses_the_icon(
    display: str, tmp_path: Path
) -> None:
    """The tray app in trayer, its needle moving for a full minute: the icon stays 24 x 24.

    pystray asked the tray to dock the icon again at each redraw; trayer then embedded it
    afresh, at one pixel wide, and logged GTK criticals.
    """
    from sysboy_tray.control_client import ControlClient

    trayer_log = tmp_path / "trayer.log"
    with tray_app(display, trayer_log=trayer_log) as run, ControlClient.find() as client:
        client.push("wave", 0, label="Wave")
        client.set_metric("wave")
        face = FACE_COLOURS[GaugeState.NO_DEVICE]
        place = wait_for(
            lambda: (p := docked_icon(display)) and p[2:] == (24, 24) and p,
            20,
            "the icon never docked at 24 x 24",
        )
        time.sleep(scaled(1))  # trayer's own complaints while it docks the icon are not ours
        complaints_before = trayer_log.read_text().count("CRITICAL")
        x, y = place[:2]
        sizes: dict[tuple[int, int] | None, int] = {}
        shots: list[bytes] = []
        start = time.monotonic()
        pushed = 0
        while time.monotonic() - start < 60:  # a real minute, whatever the timeout factor
            pushed += 1
            client.push("wave", (pushed * 7) % 101, label="Wave")
            for _ in range(5):
                where = docked_icon(display)
                size = where[2:] if where else None
                sizes[size] = sizes.get(size, 0) + 1  # type: ignore[index]
                time.sleep(0.05)
            shot = ImageGrab.grab(bbox=(x, y, x + 24, y + 24), xdisplay=display).convert("RGB")
            if close_to(shot.getpixel((12, 18)), face, 12):  # type: ignore[arg-type]
                shots.append(shot.tobytes())
        assert run.proc.poll() is None, "the tray app died"
        complaints = trayer_log.read_text().count("CRITICAL") - complaints_before
    assert set(sizes) == {(24, 24)}, f"the icon's window sizes in that minute: {sizes}"
    assert sum(sizes.values()) >= 120  # looked at often enough to see a collapse (2 a second)
    # the needle really moved: many different faces were on screen
    assert len(set(shots)) >= 10, f"only {len(set(shots))} different faces in a minute"
    assert complaints == 0, f"trayer logged {complaints} GTK criticals"


# The icon's main thread loses the processor just after pystray marks it ready (as on a
# loaded machine): the setup thread then shows the icon before pystray has noted which
# thread runs its loop.
LATE_LOOP = textwrap.dedent(
    """
    import time
    import pystray._base
    from sysboy_tray.tray.backend import load_tray
    from sysboy_tray.tray.gauge import GaugeState, draw_gauge
    from sysboy_tray.tray.xorg import x11_icon
    mark_ready = pystray._base.Icon._mark_ready
    def late(icon):
        mark_ready(icon)
        time.sleep(1.0)
    pystray._base.Icon._mark_ready = late
    toolkit = load_tray()
    icon = x11_icon(toolkit.Icon)("sysboy", draw_gauge(60, GaugeState.LINKED), "Sysboy test")
    icon.paint = lambda side: draw_gauge(60, GaugeState.LINKED, side)
    def setup(icon):
        icon.visible = True
        print("shown", flush=True)
    icon.run(setup)
    """
)


def test_an_icon_shown_before_its_loop_runs_still_docks(display: str) -> None:
    with trayer(display):
        icon = Console(
            [sys.executable, "-c", LATE_LOOP],
            env={**os.environ, "DISPLAY": display, "PYSTRAY_BACKEND": "xorg"},
        )
        try:
            icon.wait_line("shown", "the setup thread to show the icon", timeout=20)
            wait_for(lambda: docked_icon(display), 20, "the tray icon never docked")
        finally:
            icon.stop()
        assert "Traceback" not in icon.output()
