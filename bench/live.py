"""A live `sysboy serve` with a clock metric, and a well-behaved device that times it.

    python bench/live.py serve [--port N] [--interval S] [--no-mdns]
    python bench/live.py device --port N [--id ID]

`serve` is `sysboy serve` (the real command: CLI, logging, control API, signals) with
one sensor added, `clock`, whose value flips every tick (so every tick is sent) and
whose `raw` is the moment it was read (CLOCK_MONOTONIC, shared by processes).
`device` links, records (arrival, raw) of every clock sample until its stdin closes,
then prints them as JSON. The hostile-input and load benchmarks and their short
test versions use both.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
# a v2 hello without a key or an id (strangers in the hostile tests add their own)
HELLO = {
    "type": "hello",
    "proto": 2,
    "fw": "bench",
    "board": "sim",
    "nonce": "0" * 32,
    "needles": [{"output": "sim", "calibration": [[0, 0], [100, 1]]}],
}
# port -> the config folder of the bench server listening there (its keys file is in it)
_CONFIG_DIRS: dict[int, Path] = {}


def register(port: int, config_dir: Path) -> None:
    """Note where the server listening on `port` keeps its keys, so meters can pair with it."""
    _CONFIG_DIRS[port] = config_dir


def pairing(port: int, device_id: str) -> Any:
    """Pair `device_id` with the server on `port`, as a USB deploy does: a key in the
    server's pairs file (kept if it has one); the meter's half (tests.handshake.Pairing)."""
    from sysboy_tray.config import Paths
    from sysboy_tray.pairing import PairStore
    from tests.handshake import Pairing

    # a server of this process (an App in a test) keeps its keys in this process's folders
    folder = _CONFIG_DIRS.get(port) or Paths.default().config_dir
    store = PairStore(folder / "pairs.json")
    key = store.pair(device_id, keep=True)
    pc = json.loads((folder / "settings.json").read_text("utf-8"))["install_id"]
    return Pairing(key, pc)


async def link(ws: Any, port: int, device_id: str) -> None:
    """Say hello on a websockets client as a meter paired with the server, and prove it."""
    from tests.handshake import alink

    await alink(ws, device_id, pairing(port, device_id))


class ClockSource:
    """A metric that moves every tick; its raw value is when it was read."""

    id = "clock"
    label = "Clock"
    unit = "s"

    def __init__(self) -> None:
        self.flip = False

    def read(self) -> Any:
        from sysboy_tray.metrics import Reading

        self.flip = not self.flip
        return Reading("clock", 40.0 if self.flip else 60.0, raw=time.monotonic())

    def close(self) -> None:
        pass


def serve_with_clock(argv: list[str]) -> int:
    """`sysboy serve` with the clock metric added to the real ones."""
    from sysboy_tray import cli, metrics

    real = metrics.build_sources

    def with_clock(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**real(*args, **kwargs), "clock": ClockSource()}

    metrics.build_sources = with_clock  # type: ignore[assignment]
    return cli.main(["serve", *argv])


# -- the server process ---------------------------------------------------------------------


def isolated_home(metric: str = "clock") -> dict[str, str]:
    """An environment whose settings, logs and data live in a new temporary folder."""
    home = Path(tempfile.mkdtemp(prefix="sysboy-live-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    for name in ("CONFIG", "LOG", "DATA"):
        folder = home / name.lower()
        folder.mkdir()
        env[f"SYSBOY_{name}_DIR"] = str(folder)
    (home / "config" / "settings.json").write_text(json.dumps({"metric": metric}))
    return env


@dataclass
class Server:
    """A running `python bench/live.py serve` process."""

    proc: subprocess.Popen[str]
    port: int
    stderr_path: Path
    env: dict[str, str]

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def rss_mb(self) -> float:
        return float(self.ps.memory_info().rss) / 1e6

    def cpu_s(self) -> float:
        """CPU time of every thread; ns resolution where Linux's schedstat has it."""
        try:
            tasks = Path(f"/proc/{self.proc.pid}/task").iterdir()
            return sum(int((t / "schedstat").read_text().split()[0]) for t in tasks) / 1e9
        except OSError:  # not Linux: clock ticks, so use long runs
            times = self.ps.cpu_times()
            return float(times.user + times.system)

    def fds(self) -> int:
        return int(self.ps.num_fds())

    def open_file_limits(self) -> tuple[int, int]:
        """The server's (soft, hard) open-file limits as the OS holds them now."""
        limits = self.ps.rlimit(psutil.RLIMIT_NOFILE)
        return int(limits[0]), int(limits[1])

    def log_bytes(self) -> int:
        """Bytes in the log folder: the rotating log files and the captured stderr."""
        folder = Path(self.env["SYSBOY_LOG_DIR"])
        return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())

    def log(self) -> str:
        return self.stderr_path.read_text("utf-8", "replace")

    def problems(self) -> list[str]:
        """Log lines at ERROR or worse, and tracebacks."""
        return [
            line
            for line in self.log().splitlines()
            if line.startswith(("ERROR", "CRITICAL")) or "Traceback" in line
        ]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def start_server(
    interval: float = 0.1,
    port: int = 0,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = ("--no-mdns",),
    open_files: tuple[int, int] | None = None,
) -> Server:
    """Start `sysboy serve` (plus the clock) and wait until it listens.

    `open_files` (soft, hard) sets the server's open-file limits before it starts, as
    a desktop session would (POSIX only).
    """
    env = env or isolated_home()

    def limit_files() -> None:
        import resource

        assert open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, open_files)

    stderr_path = Path(env["SYSBOY_LOG_DIR"]) / f"stderr-{time.monotonic_ns()}.txt"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "serve",
                "--port",
                str(port),
                "--interval",
                str(interval),
                *list(extra),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            preexec_fn=limit_files if open_files is not None else None,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"listening on ws://[\d.]+:(\d+)/device", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}\n{stderr_path.read_text()}")
    port = int(match.group(1))
    register(port, Path(env["SYSBOY_CONFIG_DIR"]))
    return Server(proc, port, stderr_path, env)


# -- the well-behaved device -----------------------------------------------------------------


def run_device(port: int, device_id: str, key: str, pc: str) -> None:
    """Record (arrival, raw) of each clock sample until stdin closes; print them as JSON."""
    from websockets.asyncio.client import connect

    arrivals: list[tuple[float, float]] = []
    other: dict[str, int] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        threading.Thread(
            target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        async with connect(f"ws://127.0.0.1:{port}/device", max_queue=None) as ws:
            from tests.handshake import Pairing, alink

            await alink(ws, device_id, Pairing(key, pc))

            async def receive() -> None:
                async for text in ws:
                    now = time.monotonic()
                    message = json.loads(text)
                    if message["type"] == "clock":
                        arrivals.append((now, message["raw"]))
                        if len(arrivals) == 1:
                            print("ready", flush=True)
                    else:
                        other[message["type"]] = other.get(message["type"], 0) + 1

            async def heartbeat() -> None:
                while True:  # the status a real device sends every 10 s
                    await asyncio.sleep(10)
                    await ws.send('{"type":"status","rssi":-50,"heap":100000,"uptime":1}')

            tasks = [asyncio.create_task(receive()), asyncio.create_task(heartbeat())]
            await done.wait()
            for task in tasks:
                task.cancel()

    asyncio.run(main())
    print(json.dumps({"arrivals": arrivals, "other": other}))


@dataclass
class DeviceRecord:
    """What the well-behaved device saw."""

    arrivals: list[tuple[float, float]] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)

    def window(self, start: float, end: float) -> Timing:
        inside = [(at, raw) for at, raw in self.arrivals if start <= at < end]
        latencies = sorted(at - raw for at, raw in inside)
        gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(inside))
        return Timing(len(inside), latencies, gaps)


@dataclass
class Timing:
    """Samples in a time window: their latency (read to arrival) and inter-arrival gaps."""

    samples: int
    latencies: list[float]
    gaps: list[float]

    @staticmethod
    def _pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(len(values) * q))]

    @property
    def p50_ms(self) -> float:
        return self._pct(self.latencies, 0.5) * 1e3

    @property
    def p99_ms(self) -> float:
        return self._pct(self.latencies, 0.99) * 1e3

    @property
    def gap_p99_ms(self) -> float:
        return self._pct(self.gaps, 0.99) * 1e3

    @property
    def gap_max_ms(self) -> float:
        return (self.gaps[-1] if self.gaps else float("nan")) * 1e3

    def line(self) -> str:
        return (
            f"{self.samples:5d} samples, latency p50 {self.p50_ms:6.2f} ms p99 "
            f"{self.p99_ms:6.2f} ms, inter-arrival p99 {self.gap_p99_ms:6.1f} ms "
            f"max {self.gap_max_ms:6.1f} ms"
        )


class GoodDevice:
    """A well-behaved device in its own process."""

    def __init__(self, port: int, device_id: str = "good") -> None:
        paired = pairing(port, device_id)
        argv = ["--port", str(port), "--id", device_id, "--key", paired.key, "--pc", paired.pc]
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "device", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def wait_ready(self) -> None:
        """Return once the device received its first sample."""
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the good device did not get a first sample")

    def stop(self, timeout: float = 30) -> DeviceRecord:
        out, _ = self.proc.communicate("", timeout=timeout)
        data = json.loads(out) if out.strip() else {"arrivals": [], "other": {}}
        return DeviceRecord([tuple(pair) for pair in data["arrivals"]], data["other"])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        return serve_with_clock(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "device":
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--id", default="good")
        parser.add_argument("--key", required=True)
        parser.add_argument("--pc", required=True)
        args = parser.parse_args(sys.argv[2:])
        run_device(args.port, args.id, args.key, args.pc)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
