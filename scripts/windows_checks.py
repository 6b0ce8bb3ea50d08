"""Check the built app the way a Windows user meets it (run by the release workflow).

What only a real Windows shows: the windowed `sysboy.exe serve` started with no
redirected output stays up and answers `sysboy-cli.exe status`; `sysboy-cli.exe metrics`
redirected to a file in the runner's own codepage; mDNS still answers after a device
closed its query socket before the reply came (on Windows' Proactor event loop a UDP
socket goes deaf after the ConnectionResetError that causes); start at login round-trips
through the real registry; a second start of the app steps aside. The checks that make
sense elsewhere also run on Linux (the registry one is skipped there).

    python scripts/windows_checks.py --dist dist
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from checklist import run_checks

WINDOWS = sys.platform == "win32"
FACTOR = float(os.environ.get("SYSBOY_TIMEOUT_FACTOR", "1"))
SERVICE_TYPE = "_sysboy._tcp.local."
MDNS = ("224.0.0.251", 5353)
ALIVE_AFTER_S = 10.0


class CheckFailure(Exception):
    """A check failed; the text says which and how."""


def find_app(dist: Path) -> tuple[list[str], list[str]]:
    """The windowed app and its console twin, as command prefixes."""
    suffix = ".exe" if WINDOWS else ""
    for folder in (dist / "sysboy", dist):
        app = folder / f"sysboy{suffix}"
        if app.is_file():
            console = folder / f"sysboy-cli{suffix}"
            return [str(app)], [str(console if console.is_file() else app)]
    raise CheckFailure(f"no sysboy executable under {dist}")


def user_env(home: Path) -> dict[str, str]:
    """A user whose Sysboy folders are all under `home`, and no UTF-8 mode forced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSBOY_")}
    env.pop("PYTHONUTF8", None)
    env.pop("PYTHONIOENCODING", None)
    for name in ("CONFIG", "LOG", "DATA"):
        folder = home / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[f"SYSBOY_{name}_DIR"] = str(folder)
    return env


def wait_for(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout * FACTOR
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise CheckFailure(f"gave up waiting for {what}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def start_unredirected(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `command` as a double-click does: no pipes, no console of ours."""
    flags = 0
    if WINDOWS:
        flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    return subprocess.Popen(command, env=env, creationflags=flags)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()  # a windowed app has no console to send Ctrl-C to
    proc.wait(30)


# -- mDNS, as the firmware asks ----------------------------------------------------------


def ptr_query(query_id: int) -> bytes:
    """A DNS query for the service's PTR record, as the firmware's discovery sends it."""
    header = struct.pack(">HHHHHH", query_id, 0, 1, 0, 0, 0)
    name = b"".join(bytes([len(p)]) + p.encode() for p in SERVICE_TYPE.rstrip(".").split("."))
    return header + name + b"\x00" + struct.pack(">HH", 12, 1)


def ask(target: tuple[str, int], marker: bytes | None) -> bytes | None:
    """One legacy-unicast query from a fresh ephemeral port; the reply holding `marker`.

    Other servers may answer too, so replies are read until this server's comes. With
    no `marker` the socket closes at once, before any reply: the reply then meets a
    closed port, and the server's socket gets an ICMP port-unreachable.
    """
    query_id = random.randrange(1, 65535)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.bind(("0.0.0.0", 0))
        sock.settimeout(0.5 * FACTOR)
        sock.sendto(ptr_query(query_id), target)
        if marker is None:
            return None
        deadline = time.monotonic() + 3 * FACTOR
        while time.monotonic() < deadline:
            try:
                data, _peer = sock.recvfrom(9000)
            except TimeoutError:
                continue
            if data[:2] == struct.pack(">H", query_id) and marker in data:
                return data
    return None


def check_mdns_after_a_closed_socket(port: int) -> str:
    """Answered, then a query whose socket closes unread, then still answered."""
    marker = struct.pack(">H", port)  # the SRV record carries the port
    for target in (MDNS, ("127.0.0.1", 5353)):
        if ask(target, marker) is not None:
            break
    else:
        raise CheckFailure("no answer to a legacy mDNS query at all")
    for _ in range(3):
        ask(target, None)
    time.sleep(2 * FACTOR)  # the replies reach closed ports; the resets come back
    wait_for("an answer after closed query sockets", lambda: ask(target, marker), 15)
    return f"answered at {target[0]}, closed 3 query sockets unread, answered again"


# -- the checks --------------------------------------------------------------------------


def run(command: list[str], env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout * FACTOR, check=False
    )
    if done.returncode != 0 or "Traceback" in done.stderr:
        raise CheckFailure(f"{command[1:]}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout


def check_serve(app: list[str], console: list[str], env: dict[str, str]) -> dict[str, str]:
    """The windowed serve with no redirected output stays up and answers; mDNS survives."""
    settings = Path(env["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "net", "interval_s": 0.5, "port": 0}), "utf-8")
    state_file = Path(env["SYSBOY_DATA_DIR"]) / "running.json"
    proc = start_unredirected([*app, "serve"], env)
    results: dict[str, str] = {}
    try:
        state = wait_for("the state file", lambda: read_json(state_file), 30)
        port = int(state["port"])
        time.sleep(ALIVE_AFTER_S)
        if proc.poll() is not None:
            raise CheckFailure(f"serve ended by itself ({proc.returncode}) with no output")
        results["alive"] = f"still running {ALIVE_AFTER_S:g} s after listening on {port}"
        status = run([*console, "status"], env)
        if f"listening on port {port}" not in status:
            raise CheckFailure(f"status does not show port {port}:\n{status}")
        results["status"] = status.splitlines()[0]
        firewall = [line for line in status.splitlines() if line.startswith("Firewall:")]
        if firewall:
            results["firewall"] = firewall[0]
        results["mDNS"] = check_mdns_after_a_closed_socket(port)
        if proc.poll() is not None:
            raise CheckFailure(f"serve ended ({proc.returncode}) during the mDNS check")
    finally:
        stop(proc)
    log = (Path(env["SYSBOY_LOG_DIR"]) / "sysboy.log").read_text("utf-8", "replace")
    if "Traceback" in log:
        raise CheckFailure(f"serve logged a traceback:\n{log[-3000:]}")
    return results


def check_redirected_metrics(console: list[str], env: dict[str, str], out: Path) -> str:
    """`sysboy-cli.exe metrics > file` in the shell's own codepage."""
    line = subprocess.list2cmdline([*console, "metrics", "--wait", "0.2"])
    done = subprocess.run(
        f'{line} > "{out}"', shell=True, env=env, timeout=60 * FACTOR, check=False
    )
    text = out.read_bytes().decode("utf-8", "replace")
    if done.returncode != 0:
        raise CheckFailure(f"metrics > file: exit {done.returncode}\n{text}")
    net = [row for row in text.splitlines() if row.startswith("net ")]
    if not net:
        raise CheckFailure(f"metrics > file wrote no net line:\n{text}")
    return net[0].strip()


def check_single_instance(app: list[str], console: list[str], env: dict[str, str]) -> str:
    """The tray app runs; a second start says so and leaves; the first points at its icon."""
    Path(env["SYSBOY_CONFIG_DIR"], "settings.json").write_text('{"port": 0}', "utf-8")
    log_file = Path(env["SYSBOY_LOG_DIR"]) / "sysboy.log"
    tray = start_unredirected(app, env)
    try:

        def logged(text: str) -> bool:
            return log_file.exists() and text in log_file.read_text("utf-8", "replace")

        wait_for("'tray running' in the log", lambda: logged("tray running"), 60)
        second = subprocess.run(
            console, env=env, capture_output=True, text=True, timeout=30 * FACTOR, check=False
        )
        if second.returncode != 0 or "already running" not in second.stdout:
            raise CheckFailure(f"a second start did not step aside: {second}")
        wait_for("the first to point at its icon", lambda: logged("already running: this is"), 15)
        if tray.poll() is not None:
            raise CheckFailure(f"the tray app ended ({tray.returncode})")
    finally:
        stop(tray)
    return second.stdout.strip()


def check_start_at_login() -> str:
    """Start at login through the real registry: on, read back, moved, refreshed, off."""
    if not WINDOWS:
        return "skipped (no registry here)"
    import winreg

    from sysboy_tray.autostart import RUN_KEY, RUN_VALUE, autostart_for

    entry = autostart_for()
    was_on = entry.is_enabled()
    try:
        entry.enable()
        if not entry.is_enabled():
            raise CheckFailure("start at login is off right after turning it on")
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            stored, _kind = winreg.QueryValueEx(key, RUN_VALUE)
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, RUN_VALUE, 0, winreg.REG_SZ, r"C:\old place\sysboy.exe")
        if not entry.refresh():
            raise CheckFailure("a stale start-at-login path was not rewritten")
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            again, _kind = winreg.QueryValueEx(key, RUN_VALUE)
        if again != stored:
            raise CheckFailure(f"the rewritten entry is {again!r}, not {stored!r}")
        entry.disable()
        if entry.is_enabled():
            raise CheckFailure("start at login is still on after turning it off")
    finally:
        if was_on:
            entry.enable()
    return f"on, read back {stored!r}, rewritten after a move, off"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--dist", type=Path, help="the folder build.spec built")
    where.add_argument(
        "--from-source", action="store_true", help="check `python -m sysboy_tray` instead"
    )
    parser.add_argument("--no-tray", action="store_true", help="leave out the tray app check")
    args = parser.parse_args(argv)
    if args.from_source:
        app = console = [sys.executable, "-m", "sysboy_tray"]
    else:
        app, console = find_app(args.dist.resolve())
    with tempfile.TemporaryDirectory(prefix="sysboy-windows-") as tmp:
        scratch = Path(tmp)
        checks: list[tuple[str, Callable[[], object]]] = [
            ("serve with no output", lambda: check_serve(app, console, user_env(scratch / "a"))),
            (
                "metrics > file",
                lambda: check_redirected_metrics(
                    console, user_env(scratch / "b"), scratch / "metrics.txt"
                ),
            ),
            ("start at login", check_start_at_login),
        ]
        if not args.no_tray:
            checks.append(
                (
                    "single instance",
                    lambda: check_single_instance(app, console, user_env(scratch / "c")),
                )
            )
        return run_checks(checks, CheckFailure, "windows checks")


if __name__ == "__main__":
    sys.exit(main())
