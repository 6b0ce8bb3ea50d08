"""Server benchmark: CPU per sample vs bare metric reads, sample latency, RSS.

    python bench/bench_server.py            # full run (about 2 minutes)
    python bench/bench_server.py --quick    # short run, same figures, less precise

Every figure is printed next to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import live

CLIENT_PROCESSES = 4


def isolated_env(metric: str = "cpu") -> dict[str, str]:
    home = Path(tempfile.mkdtemp(prefix="sysboy-bench-"))
    env = dict(os.environ)
    for name in ("CONFIG", "LOG", "DATA"):
        folder = home / name.lower()
        folder.mkdir()
        env[f"SYSBOY_{name}_DIR"] = str(folder)
    (home / "config" / "settings.json").write_text(json.dumps({"metric": metric}))
    return env


def start_serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sysboy_tray", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        raise SystemExit(f"sysboy serve did not start: {line!r}")
    port = int(line.rsplit(":", 1)[1].split("/", 1)[0])
    live.register(port, Path(env["SYSBOY_CONFIG_DIR"]))  # where its meters get paired
    return proc, port


def cpu_seconds(proc: psutil.Process) -> float:
    """CPU time of every thread of `proc`, in ns resolution where Linux's schedstat has it."""
    total = 0
    try:
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except OSError:  # not Linux: clock-tick resolution, so use long runs
        times = proc.cpu_times()
        return float(times.user + times.system)


# -- 1. CPU per sample against the bare reads ----------------------------------------------


def bare_read_cost(metric: str, reads: int, rate_hz: float | None = None) -> float:
    """CPU seconds per read of `metric` by the same source the server uses, in a bare loop.

    With `rate_hz` the loop sleeps between reads like the sampler does, so both pay the
    same cold caches and wake-ups; without it, the reads run back to back (warm).
    """
    from sysboy_tray.config import Settings
    from sysboy_tray.metrics import build_sources

    source = build_sources(Settings())[metric]
    source.read()
    started = time.process_time()
    for _ in range(reads):
        source.read()
        if rate_hz:
            time.sleep(1 / rate_hz)
    return (time.process_time() - started) / reads


async def hold_device(port: int, seconds: float) -> int:
    received = 0
    async with connect(f"ws://127.0.0.1:{port}/device") as ws:
        await live.link(ws, port, "bench-cpu")
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(ws.recv(), left)
                received += 1
            except TimeoutError:
                break
    return received


def server_cpu_per_sample(rate_hz: float, seconds: float) -> tuple[float, int]:
    """CPU seconds the whole `sysboy serve` process spends per sampler tick, one device linked."""
    proc, port = start_serve(isolated_env("cpu"), "--interval", str(1 / rate_hz), "--no-mdns")
    try:
        ps = psutil.Process(proc.pid)
        time.sleep(1.0)  # start-up work is not per-sample work
        before = cpu_seconds(ps)
        frames = asyncio.run(hold_device(port, seconds))
        spent = cpu_seconds(ps) - before
    finally:
        proc.terminate()
        proc.wait(10)
    return spent / (seconds * rate_hz), frames


# -- 2. sample-to-client latency -----------------------------------------------------------


class ClockSource:
    """A metric whose raw value is the moment it was read (CLOCK_MONOTONIC, shared by processes)."""

    id = "clock"
    label = "Clock"
    unit = "s"

    def __init__(self) -> None:
        self.flip = False

    def read(self):  # type: ignore[no-untyped-def]
        from sysboy_tray.metrics import Reading

        self.flip = not self.flip  # move the needle every tick so every tick is sent
        return Reading("clock", 40.0 if self.flip else 60.0, raw=time.monotonic())

    def close(self) -> None:
        pass


def latency_clients(
    port: int, first: int, clients: int, seconds: float, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    async def one(index: int) -> list[float]:
        delays: list[float] = []
        # as many meters as a house could hold, but each from its own loopback address:
        # the server takes at most 16 connections from one address
        source = (f"127.0.{1 + index // 200}.{1 + index % 200}", 0)
        async with connect(
            f"ws://127.0.0.1:{port}/device", max_queue=None, local_addr=source
        ) as ws:
            await live.link(ws, port, f"bench-{index}")
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                try:
                    frame = await asyncio.wait_for(ws.recv(), left)
                except TimeoutError:
                    break
                arrived = time.monotonic()  # before parsing: the client's own work is not latency
                message = json.loads(frame)
                if message.get("type") == "clock" and "raw" in message:
                    delays.append(arrived - message["raw"])
        return delays

    async def all_clients() -> list[float]:
        results = await asyncio.gather(*(one(first + i) for i in range(clients)))
        return [d for r in results for d in r[5:]]  # skip the first ticks (links opening)

    out.put(asyncio.run(all_clients()))


def latency(clients: int, seconds: float, rate_hz: float = 10.0) -> tuple[float, float, int]:
    """p50 and p99 (seconds) from the sensor read to the client, over a live socket."""
    from sysboy_tray.app import App
    from sysboy_tray.config import Paths

    env = isolated_env("clock")
    os.environ.update({k: v for k, v in env.items() if k.startswith("SYSBOY_")})
    app = App(
        Paths.default(),
        sources={"clock": ClockSource()},
        port=0,
        interval=1 / rate_hz,
        advertise=False,
    )
    app.start()
    try:
        # the clients share out over a few processes, so one client process's own
        # parsing does not queue up behind the others and count as latency
        queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
        for index in range(clients):  # paired here: one writer of the keys file at a time
            live.pairing(app.port, f"bench-{index}")
        procs = min(CLIENT_PROCESSES, clients)
        shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
        workers = []
        first = 0
        for share in shares:
            worker = multiprocessing.Process(
                target=latency_clients, args=(app.port, first, share, seconds, queue)
            )
            worker.start()
            workers.append(worker)
            first += share
        delays = [d for _ in workers for d in queue.get(timeout=seconds + 60)]
        for worker in workers:
            worker.join(10)
    finally:
        app.stop()
    delays.sort()
    p50 = delays[len(delays) // 2]
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return p50, p99, len(delays)


def loopback_floor(seconds: float) -> float:
    """Baseline: p50 of a bare websockets echo round trip / 2 on the same loopback."""
    from websockets.asyncio.server import serve

    async def main() -> float:
        async def echo(ws):  # type: ignore[no-untyped-def]
            async for message in ws:
                await ws.send(message)

        async with serve(echo, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
                trips = []
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    start = time.monotonic()
                    await ws.send('{"type":"cpu","value":1.0}')
                    await ws.recv()
                    trips.append((time.monotonic() - start) / 2)
        return statistics.median(trips)

    return asyncio.run(main())


# -- 3. RSS ---------------------------------------------------------------------------------


def serve_rss(seconds: float) -> tuple[float, float]:
    """RSS (MB) of `sysboy serve` with mDNS and one device, next to a bare Python's."""
    proc, port = start_serve(isolated_env("cpu"), "--interval", "1")
    try:
        asyncio.run(hold_device(port, seconds))
        rss = psutil.Process(proc.pid).memory_info().rss / 1e6
    finally:
        proc.terminate()
        proc.wait(10)
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    time.sleep(0.5)
    bare_rss = psutil.Process(bare.pid).memory_info().rss / 1e6
    bare.kill()
    bare.wait()
    return rss, bare_rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run, less precise")
    args = parser.parse_args()
    span = 4.0 if args.quick else 20.0

    print("== CPU per sample (metric: cpu), one device linked")
    warm = bare_read_cost("cpu", 2000 if args.quick else 20000)
    print(f"bare reads back to back (warm caches): {warm * 1e6:8.1f} us per read")
    for rate in (1.0, 10.0):
        seconds = span * 2 if rate == 1.0 else span
        bare = bare_read_cost("cpu", int(seconds * rate), rate)
        per_sample, frames = server_cpu_per_sample(rate, seconds)
        print(
            f"{rate:4.0f} Hz: bare reads at this rate {bare * 1e6:7.1f} us, sysboy serve "
            f"{per_sample * 1e6:7.1f} us per sample ({frames} frames), "
            f"ratio {per_sample / bare:4.2f} (target <= 1.5); "
            f"serve uses {per_sample * rate * 100:.3f} % of one core"
        )

    print("== sample-to-client latency over loopback (10 Hz)")
    floor = loopback_floor(2.0)
    print(f"baseline: bare websockets one-way on loopback p50 {floor * 1e3:6.3f} ms")
    for clients, target in ((1, 5.0), (100, 20.0)):
        p50, p99, n = latency(clients, span)
        print(
            f"{clients:3d} client(s): p50 {p50 * 1e3:6.3f} ms  p99 {p99 * 1e3:6.3f} ms "
            f"({n} samples; p99 target <= {target:g} ms; p50/baseline {p50 / floor:5.1f}x)"
        )

    print("== memory")
    rss, bare_rss = serve_rss(3.0 if args.quick else 10.0)
    print(
        f"sysboy serve RSS {rss:5.1f} MB (target <= 45)  bare python RSS {bare_rss:5.1f} MB  "
        f"ratio {rss / bare_rss:4.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
