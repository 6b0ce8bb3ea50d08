"""Write assets/sysboy.ico (16-256 px) and assets/sysboy.png (256 px) from the tray's gauge."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

from sysboy_tray.config import atomic_write
from sysboy_tray.tray.gauge import GaugeState, draw_gauge

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)
PNG_SIZE = 256
# The app icon: a linked meter, needle a little past half scale.
APP_PERCENT = 62.0
APP_STATE = GaugeState.LINKED
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def render(size: int) -> Image.Image:
    """The app icon drawn for one size (each size drawn apart, not scaled from 256 px)."""
    return draw_gauge(APP_PERCENT, APP_STATE, size)


def ico_bytes() -> bytes:
    """The .ico file: one frame per size in ICON_SIZES."""
    frames = [render(size) for size in ICON_SIZES]
    out = io.BytesIO()
    largest = frames[-1]
    largest.save(
        out,
        format="ICO",
        sizes=[(s, s) for s in ICON_SIZES],
        append_images=frames[:-1],
    )
    return out.getvalue()


def png_bytes() -> bytes:
    """The .png file at PNG_SIZE."""
    out = io.BytesIO()
    render(PNG_SIZE).save(out, format="PNG", optimize=True)
    return out.getvalue()


def write_icons(folder: Path) -> list[Path]:
    """Write sysboy.ico and sysboy.png into `folder`; return their paths."""
    ico, png = folder / "sysboy.ico", folder / "sysboy.png"
    atomic_write(ico, ico_bytes())
    atomic_write(png, png_bytes())
    return [ico, png]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder to write to")
    args = parser.parse_args(argv)
    for path in write_icons(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
