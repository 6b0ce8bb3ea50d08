"""Start-to-listening of the frozen app: one folder against one file, and against `python -m`.

Builds both layouts with build.spec (SYSBOY_ONEFILE=1 for one file), starts `serve --port 0`
several times each, and prints the median time until the server listens (its state file is
written) and the ratio to the one-folder build measured in the same run.

    python bench/bench_frozen_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from smoke_binary import build, find_app, size_of, user_env  # noqa: E402


def time_to_listening(command: list[str], home: Path) -> float:
    """Seconds from starting `command serve --port 0` until it writes its state file."""
    env = user_env(home)
    state = Path(env["SYSBOY_DATA_DIR"]) / "running.json"
    state.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "serve", "--port", "0", "--no-mdns"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < 60:
            try:
                json.loads(state.read_text("utf-8"))
                return time.perf_counter() - started
            except (OSError, ValueError):
                time.sleep(0.002)
        raise RuntimeError(f"{command[0]} did not listen within 60 s")
    finally:
        proc.terminate()
        proc.wait()


def median_start(command: list[str], home: Path, runs: int) -> float:
    time_to_listening(command, home)  # the first start warms the page cache; not counted
    return statistics.median(time_to_listening(command, home) for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sysboy-bench-") as tmp:
        scratch = Path(tmp)
        builds = {}
        for layout, onefile in (("one folder", "0"), ("one file", "1")):
            os.environ["SYSBOY_ONEFILE"] = onefile
            dist = scratch / f"dist-{onefile}"
            seconds = build(dist, scratch / f"build-{onefile}")
            app, _console = find_app(dist)
            folder = app.parent if (app.parent / "_internal").is_dir() else app
            builds[layout] = app
            print(f"{layout}: built in {seconds:.0f} s, {size_of(folder) / 2**20:.1f} MiB on disk")
        os.environ.pop("SYSBOY_ONEFILE")
        home = scratch / "user"
        results = {
            layout: median_start([str(app)], home, args.runs) for layout, app in builds.items()
        }
        results["python -m sysboy_tray"] = median_start(
            [sys.executable, "-m", "sysboy_tray"], home, args.runs
        )
    baseline = results["one folder"]
    print(f"\nstart to listening, median of {args.runs} runs (serve --port 0 --no-mdns):")
    for layout, seconds in results.items():
        print(f"  {layout:<22} {seconds:6.3f} s   x{seconds / baseline:.2f} of one folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
