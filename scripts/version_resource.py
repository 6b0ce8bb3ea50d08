"""The Windows version resource (Properties > Details) for the frozen app, from __version__."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = "Sysboy2000"
DESCRIPTION = "Sysboy2000: live PC data on an analog panel meter"
US_ENGLISH, UNICODE = 0x0409, 1200


def read_version(root: Path = ROOT) -> str:
    """`__version__` from sysboy_tray/__init__.py, read as text (the package is not imported)."""
    text = (root / "sysboy_tray" / "__init__.py").read_text("utf-8")
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not found:
        raise ValueError("sysboy_tray/__init__.py has no __version__ line")
    return found.group(1)


def version_numbers(version: str) -> tuple[int, int, int, int]:
    """The four numbers Windows shows: `1.2.3` -> (1, 2, 3, 0); a suffix like `.dev1` is dropped."""
    found = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?", version)
    if not found:
        raise ValueError(f"{version!r} does not start with a version number")
    numbers = [int(part or 0) for part in found.groups()]
    if any(n > 0xFFFF for n in numbers):
        raise ValueError(f"{version!r}: Windows allows at most 65535 in each part")
    return numbers[0], numbers[1], numbers[2], numbers[3]


def version_resource(version: str, exe_name: str) -> Any:
    """The version resource (a PyInstaller VSVersionInfo) for `exe_name` at `version`."""
    # PyInstaller's versioninfo module imports only on Windows (it needs win32api there)
    from PyInstaller.utils.win32 import versioninfo as vi

    numbers = version_numbers(version)
    strings = [
        vi.StringStruct("CompanyName", PRODUCT),
        vi.StringStruct("FileDescription", DESCRIPTION),
        vi.StringStruct("FileVersion", version),
        vi.StringStruct("InternalName", exe_name.removesuffix(".exe")),
        vi.StringStruct("LegalCopyright", "MIT License"),
        vi.StringStruct("OriginalFilename", exe_name),
        vi.StringStruct("ProductName", PRODUCT),
        vi.StringStruct("ProductVersion", version),
    ]
    return vi.VSVersionInfo(
        ffi=vi.FixedFileInfo(filevers=numbers, prodvers=numbers),
        kids=[
            vi.StringFileInfo([vi.StringTable(f"{US_ENGLISH:04x}{UNICODE:04x}", strings)]),
            vi.VarFileInfo([vi.VarStruct("Translation", [US_ENGLISH, UNICODE])]),
        ],
    )
