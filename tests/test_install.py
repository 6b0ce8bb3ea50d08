"""`pip install .` as a user runs it (not editable): the firmware travels inside the package.

The project is built into a wheel from a copy of the tree and installed into a fresh
virtual environment. The dependencies are not downloaded again: a path file lends the
fresh environment this one's packages (after its own), so the test stays quick and works
offline, while `sysboy_tray` itself, and the firmware it carries, come from the wheel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysboy_tray.simulator.device import device_id, find_micropython
from tests.conftest import scaled
from tests.console import Console, child_env, sysboy_argv

ROOT = Path(__file__).resolve().parent.parent
# what a source distribution holds (MANIFEST.in): enough to build the wheel
TREE = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "sysboy_tray",
    "firmware_micropython",
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy", ".*")


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=scaled(300),
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the project installed from a wheel; yields its bin folder."""
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    source.mkdir()
    for name in TREE:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=IGNORED)
        else:
            shutil.copy2(path, source / name)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("SYSBOY_FIRMWARE_DIR", None)
    # no build isolation: the build tools are this environment's (the test extras), so no
    # index is needed
    built = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(work / "wheels"), str(source)],
        env,
        work,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (work / "wheels").glob("sysboy2000-*.whl")
    fresh = work / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    bin_dir = fresh / ("Scripts" if sys.platform == "win32" else "bin")
    python = bin_dir / ("python.exe" if sys.platform == "win32" else "python")
    done = run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        env,
        work,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    purelib = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env, work
    ).stdout.strip()
    # after the venv's own packages: the dependencies, never this checkout's sysboy_tray
    (Path(purelib) / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    yield bin_dir


def fresh_env(bin_dir: Path) -> dict[str, str]:
    env = child_env()
    env.pop("SYSBOY_FIRMWARE_DIR", None)
    env.pop("PYTHONPATH", None)
    micropython = find_micropython()
    extra = [str(Path(micropython).parent)] if micropython else []
    env["PATH"] = os.pathsep.join([str(bin_dir), *extra, env.get("PATH", "")])
    return env


def test_the_installed_package_carries_the_firmware(installed: Path, tmp_path: Path) -> None:
    env = fresh_env(installed)
    where = run(
        [str(installed / "python"), "-c",
         "import sysboy_tray.firmware_tool as t; print(t.__file__); print(t.firmware_dir())"],
        env,
        tmp_path,
    )  # fmt: skip
    module, folder = where.stdout.split()
    assert Path(module).is_relative_to(installed.parent), "sysboy_tray came from the checkout"
    assert Path(folder) == Path(module).parent / "_firmware"
    assert (Path(folder) / "main.py").is_file()
    assert not (Path(folder) / "tests").exists()  # the firmware's own tests stay behind

    built = run([str(installed / "sysboy"), "firmware", "build", "--out", "bundle"], env, tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    names = {entry["path"] for entry in manifest["files"]}
    assert {"main.py", "boot.py", "app.mpy", "protocol.mpy", "hal/esp32.mpy"} <= names


def test_the_installed_simulator_follows_a_pushed_value(installed: Path, tmp_path: Path) -> None:
    env = fresh_env(installed)
    sysboy = str(installed / "sysboy")
    Path(env["SYSBOY_CONFIG_DIR"], "settings.json").write_text(json.dumps({"custom_ttl_s": 600}))
    server = Console([sysboy, "serve", "--port", "0", "--no-mdns"], env=env, merge_stderr=False)
    sim: Console | None = None
    try:
        line = server.lines[server.wait_line("listening on ", timeout=30)]
        found = re.search(r":(\d+)/device", line)
        assert found, line
        pushed = run([sysboy, "push", "demo", "25", "--label", "Demo"], env, tmp_path)
        assert pushed.returncode == 0, pushed.stderr
        sim = Console(
            [sysboy, "simulate", "--headless", "--server", f"127.0.0.1:{found.group(1)}"],
            env=env,
            merge_stderr=False,
        )
        sim.wait_line("state nodata", "the device to link", timeout=30)
        chosen = run([sysboy, "metric", "demo", "--device", device_id("sim")], env, tmp_path)
        assert chosen.returncode == 0, chosen.stderr
        at_25 = sim.wait_line("needle 0.2500", timeout=20)
        assert run([sysboy, "push", "demo", "75"], env, tmp_path).returncode == 0
        sim.wait_line("needle 0.7500", timeout=20, after=at_25)
        assert not any("Traceback" in e for e in sim.errors), sim.output()
    finally:
        if sim is not None:
            sim.stop()
        server.stop()


def test_without_the_firmware_sources_the_commands_say_so(tmp_path: Path) -> None:
    """Say where the firmware was looked for, in a sentence (it was a traceback)."""
    env = {**child_env(), "SYSBOY_FIRMWARE_DIR": str(tmp_path / "nowhere")}
    simulate = run([*sysboy_argv("simulate", "--headless")], env, tmp_path)
    assert simulate.returncode == 2
    assert simulate.stderr.startswith("sysboy: the device firmware is not at ")
    assert "Traceback" not in simulate.stderr
    built = run([*sysboy_argv("firmware", "build", "--out", "bundle")], env, tmp_path)
    assert built.returncode == 1
    assert built.stderr.startswith("sysboy: The firmware sources are not at ")
    assert "Traceback" not in built.stderr and not (tmp_path / "bundle").exists()
