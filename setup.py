"""Build step: the device firmware travels inside the installed package.

The sources stay in `firmware_micropython/` at the top of the checkout (the firmware is
its own program, with its own tests); a built wheel carries a copy of them, tests left
out, as `sysboy_tray/_firmware/`, where `sysboy_tray.firmware_tool.firmware_dir()` finds
them. An editable install reads the checkout's folder instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "firmware_micropython"
TARGET = Path("sysboy_tray") / "_firmware"
SKIPPED = {"tests", "__pycache__"}


def firmware_files() -> list[Path]:
    """The firmware's files relative to its folder: its tests, caches and builds left out."""
    found = []
    for path in sorted(SOURCE.rglob("*")):
        relative = path.relative_to(SOURCE)
        hidden = any(part.startswith(".") for part in relative.parts)
        if path.is_dir() or hidden or SKIPPED.intersection(relative.parts):
            continue
        if path.suffix in {".mpy", ".pyc"}:
            continue
        found.append(relative)
    return found


class BuildWithFirmware(build_py):
    """`build_py`, then a copy of the firmware sources into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the checkout's own folder is read in place
        target = Path(self.build_lib) / TARGET
        if target.exists():
            shutil.rmtree(target)
        for relative in firmware_files():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SOURCE / relative, destination)


setup(cmdclass={"build_py": BuildWithFirmware})
