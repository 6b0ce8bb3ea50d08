"""Load: many light devices on one live `sysboy serve`, a sample every tick (10 Hz).

    python bench/bench_load.py                          # 200 devices for 60 s
    python bench/bench_load.py --devices 50 --seconds 5

The devices run in their own process (asyncio, real websockets clients). The metric
is a clock whose value moves every tick, so every tick is sent to every device.
Prints: the share of ticks each device got (target >= 99 %), the server's CPU against
the same server idle (no device, same sampler) measured in the same run, its RSS when
idle, once every device is linked and at the end (target: grows < 5 MB over the run),
and any ERROR in its log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.live import _CONFIG_DIRS, ROOT, Server, link, start_server

INTERVAL = 0.1


def run_devices(port: int, devices: int, seconds: float) -> None:
    """The device process: link them all, say `measuring`, count ticks, print JSON."""
    from websockets.asyncio.client import connect

    raws: list[list[float]] = [[] for _ in range(devices)]
    closed: list[int | None] = [None] * devices

    async def one(index: int, ready: asyncio.Event, stop: asyncio.Event) -> None:
        # each meter on a desk has an address of its own (one address may hold only a few)
        local = (f"127.0.{1 + index // 250}.{1 + index % 250}", 0)
        async with connect(
            f"ws://127.0.0.1:{port}/device", open_timeout=30, local_addr=local
        ) as ws:
            try:
                await link(ws, port, f"load-{index}")
            except Exception as exc:  # one meter that cannot link ends the run, not a hang
                print(f"load-{index} did not link: {exc!r}", file=sys.stderr, flush=True)
                os._exit(1)
            ready.set()
            try:
                while not stop.is_set():
                    message = json.loads(await ws.recv())
                    if message["type"] == "clock":
                        raws[index].append(message["raw"])
            except Exception:
                closed[index] = ws.close_code

    async def main() -> None:
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in range(devices)]
        tasks = []
        for index in range(devices):  # link in small groups, as meters would come online
            tasks.append(asyncio.create_task(one(index, readies[index], stop)))
            if index % 20 == 19:
                await asyncio.sleep(0.05)
        await asyncio.gather(*(ready.wait() for ready in readies))
        await asyncio.sleep(3.0)  # settle: every link has had its hello and first samples
        start = time.monotonic()
        print(f"measuring {start}", flush=True)
        await asyncio.sleep(seconds)
        end = time.monotonic()
        print(f"done {end}", flush=True)
        await asyncio.sleep(1.0)  # the last ticks of the window are on their way
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # ticks read in the window [start, end); a tick is known if any device got it
        window = [[r for r in got if start <= r < end] for got in raws]
        ticks = sorted({r for got in window for r in got})
        print(
            json.dumps({"counts": [len(w) for w in window], "ticks": len(ticks), "closed": closed})
        )

    asyncio.run(main())


@dataclass
class LoadResult:
    devices: int
    seconds: float
    ticks: int
    counts: list[int]
    closed: list[int | None]
    cpu_s: float
    rss_idle: float
    rss_linked: float
    rss_end: float
    idle_cpu_s: float
    problems: list[str]

    @property
    def worst_share(self) -> float:
        return min(self.counts) / self.ticks if self.ticks else 0.0

    @property
    def mean_share(self) -> float:
        return sum(self.counts) / len(self.counts) / self.ticks if self.ticks else 0.0


def idle_cpu(server: Server, seconds: float) -> float:
    before = server.cpu_s()
    time.sleep(seconds)
    return server.cpu_s() - before


def run_load(devices: int, seconds: float, idle_seconds: float = 5.0) -> LoadResult:
    """Start a server, measure it idle, then under `devices` for `seconds`."""
    server = start_server(interval=INTERVAL)
    try:
        time.sleep(1.0)
        rss_idle = server.rss_mb()
        idle_cpu_s = idle_cpu(server, idle_seconds) * seconds / idle_seconds
        command = [sys.executable, __file__, "--device-process", str(server.port)]
        config_dir = _CONFIG_DIRS[server.port]
        proc = subprocess.Popen(
            [*command, str(devices), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
            # the meters pair through the server's own keys file, as a USB deploy would
            env={**os.environ, "PYTHONPATH": str(ROOT), "SYSBOY_CONFIG_DIR": str(config_dir)},
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("measuring"):
            raise RuntimeError(f"the devices did not link: {line!r}")
        cpu_before, rss_linked = server.cpu_s(), server.rss_mb()
        line = proc.stdout.readline()
        cpu_s, rss_end = server.cpu_s() - cpu_before, server.rss_mb()
        data = json.loads(proc.stdout.readline())
        proc.wait(30)
    finally:
        code = server.stop()
    problems = server.problems() + ([] if code == 0 else [f"exit status {code}"])
    return LoadResult(
        devices,
        seconds,
        data["ticks"],
        data["counts"],
        data["closed"],
        cpu_s,
        rss_idle,
        rss_linked,
        rss_end,
        idle_cpu_s,
        problems,
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--device-process":
        run_devices(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    r = run_load(args.devices, args.seconds, idle_seconds=min(10.0, args.seconds))
    nominal = args.seconds / INTERVAL
    frames = sum(r.counts)
    print(f"== {r.devices} devices at {1 / INTERVAL:g} Hz for {r.seconds:g} s")
    print(
        f"ticks: {r.ticks} sent by the sampler ({nominal:.0f} nominal); per device: worst "
        f"{r.worst_share * 100:6.2f} %, mean {r.mean_share * 100:6.2f} % (target >= 99 %); "
        f"links closed early: {sum(c is not None for c in r.closed)}"
    )
    print(
        f"server CPU: {r.cpu_s / r.seconds * 100:5.1f} % of one core with {r.devices} devices, "
        f"{r.idle_cpu_s / r.seconds * 100:5.2f} % idle (baseline, same sampler); "
        f"{(r.cpu_s - r.idle_cpu_s) / max(frames, 1) * 1e6:5.1f} us per sample delivered "
        f"({frames} samples)"
    )
    print(
        f"server RSS: idle {r.rss_idle:5.1f} MB, all linked {r.rss_linked:5.1f} MB "
        f"({(r.rss_linked - r.rss_idle) / r.devices * 1e3:4.0f} kB per device), end "
        f"{r.rss_end:5.1f} MB: grew {r.rss_end - r.rss_linked:+.1f} MB over the run (target < 5)"
    )
    print(f"server log: {len(r.problems)} ERROR/traceback lines")
    for line in r.problems[:20]:
        print(f"  {line}")
    ok = not r.problems and r.worst_share >= 0.99 and r.rss_end - r.rss_linked < 5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
