"""The committed app icons: the sizes the .ico holds, and that the script still makes them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
ICO_SIZES = {16, 24, 32, 48, 64, 128, 256}


def frame(path: Path, size: int) -> Image.Image:
    with Image.open(path) as image:
        image.size = (size, size)
        return image.convert("RGBA")


def max_difference(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    extrema = ImageChops.difference(a, b).getextrema()
    return max(hi for _lo, hi in extrema)  # type: ignore[misc,union-attr]


def test_ico_holds_every_size() -> None:
    with Image.open(ASSETS / "sysboy.ico") as ico:
        assert ico.format == "ICO"
        assert ico.info["sizes"] == {(s, s) for s in ICO_SIZES}
    for size in ICO_SIZES:
        assert frame(ASSETS / "sysboy.ico", size).size == (size, size)
    with Image.open(ASSETS / "sysboy.png") as png:
        assert png.format == "PNG"
        assert png.size == (256, 256)
        assert png.mode == "RGBA"


def test_committed_icons_match_the_script(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_icons.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sysboy.ico" in out.stdout
    # pixels, not bytes: another Pillow may compress the same picture differently
    for size in ICO_SIZES:
        fresh, committed = frame(tmp_path / "sysboy.ico", size), frame(ASSETS / "sysboy.ico", size)
        assert max_difference(fresh, committed) <= 2, f"{size} px frame differs: rerun the script"
    with Image.open(tmp_path / "sysboy.png") as fresh, Image.open(ASSETS / "sysboy.png") as old:
        assert max_difference(fresh.convert("RGBA"), old.convert("RGBA")) <= 2
