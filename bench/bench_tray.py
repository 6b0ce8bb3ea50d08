"""Tray app benchmark: idle RSS and CPU at a 1 s update rate, on a real X server.

    python bench/bench_tray.py            # about a minute
    python bench/bench_tray.py --quick    # shorter, less precise

Needs Xvfb and trayer (Debian packages xvfb, trayer). Every figure is printed next to
a baseline measured in the same run: a bare pystray icon process for memory, and the
bare metric reads at the same rate for CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_server import bare_read_cost, cpu_seconds, isolated_env
from tests.meter import Meter
from tests.xvfb import trayer, xvfb

BARE_ICON = textwrap.dedent(
    """
    import sys, time
    from sysboy_tray.tray.backend import load_tray
    from sysboy_tray.tray.gauge import GaugeState, draw_gauge
    toolkit = load_tray()
    icon = toolkit.Icon("bare", draw_gauge(50, GaugeState.LINKED, 64), "bare")
    def setup(icon):
        icon.visible = True
        print("up", flush=True)
    icon.run(setup)
    """
)


def wait_state(env: dict[str, str], timeout: float = 30) -> dict[str, object]:
    state = Path(env["SYSBOY_DATA_DIR"]) / "running.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return dict(json.loads(state.read_text()))
        except (OSError, ValueError):
            time.sleep(0.1)
    raise SystemExit("the tray app did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    settle, window = (3.0, 10.0) if args.quick else (10.0, 40.0)

    with xvfb() as display, trayer(display):
        env = isolated_env("cpu")
        env.update(DISPLAY=display, PYSTRAY_BACKEND="xorg")
        Path(env["SYSBOY_CONFIG_DIR"], "settings.json").write_text(
            json.dumps({"metric": "cpu", "interval_s": 1.0, "port": 0})
        )
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_ICON], env=env, stdout=subprocess.PIPE, text=True
        )
        app = subprocess.Popen([sys.executable, "-m", "sysboy_tray"], env=env)
        try:
            assert bare.stdout is not None and bare.stdout.readline().strip() == "up"
            state = wait_state(env)
            time.sleep(settle)
            ps = psutil.Process(app.pid)
            idle_rss = ps.memory_info().rss / 1e6
            bare_rss = psutil.Process(bare.pid).memory_info().rss / 1e6
            print("== memory (idle, no device)")
            print(
                f"tray app RSS {idle_rss:5.1f} MB (target <= 70)   "
                f"bare pystray icon {bare_rss:5.1f} MB   ratio {idle_rss / bare_rss:4.2f}x"
            )

            print(f"== CPU at a 1 s rate, one device linked, {window:g} s")
            with Meter(int(str(state["port"]))) as meter:
                meter.wait_for("cpu")
                before = cpu_seconds(ps)
                started = time.monotonic()
                time.sleep(window)
                spent = cpu_seconds(ps) - before
                elapsed = time.monotonic() - started
                frames = len(meter.messages)
            reads = bare_read_cost("cpu", int(window / 4), 1.0)
            print(
                f"tray app: {spent / elapsed * 100:6.3f} % of one core "
                f"({spent / elapsed * 1e3:6.2f} ms per second, {frames} frames to the device)"
            )
            print(
                f"baseline: bare cpu read at 1 Hz {reads * 1e3:6.3f} ms per second   "
                f"ratio {spent / elapsed / reads:5.2f}x"
            )
            print(f"tray app RSS after the run {ps.memory_info().rss / 1e6:5.1f} MB")
        finally:
            for proc in (app, bare):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SYSBOY_TIMEOUT_FACTOR", "1")
    sys.exit(main())
