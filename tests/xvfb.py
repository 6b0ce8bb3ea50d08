"""A real X server for tests that need a desktop: Xvfb, and trayer as a tray host."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import scaled
from tests.debian import need


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=scaled(5))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# the running servers by display, for a test that makes one go away (crash_server)
_SERVERS: dict[str, subprocess.Popen[bytes]] = {}


def crash_server(display: str) -> None:
    """Kill the X server of `display` at once, as a crash or the end of a session does."""
    _SERVERS[display].kill()


@contextmanager
def xvfb(width: int = 640, height: int = 480) -> Iterator[str]:
    """Run Xvfb on a free display; yield its DISPLAY value (":N")."""
    need("xvfb")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [
            *("Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{width}x{height}x24"),
            *("-nolisten", "tcp", "-noreset"),
        ],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    number = ""
    try:
        # Xvfb writes the display number once it accepts clients.
        ready, _, _ = select.select([read_end], [], [], scaled(20))
        number = os.read(read_end, 64).decode().strip() if ready else ""
        if not number.isdigit():
            raise RuntimeError("Xvfb did not start")
        _SERVERS[f":{number}"] = proc
        yield f":{number}"
    finally:
        os.close(read_end)
        _stop(proc)
        _SERVERS.pop(f":{number}", None)


@contextmanager
def trayer(
    display: str, height: int = 26, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run trayer, a small XEmbed tray host, at the top right of `display`.

    What trayer says (GTK's warnings) goes to the file `log`, if given.
    """
    need("trayer")
    # the last trayer on this display may not be forgotten by the X server yet
    before = _tray_owner(display)
    out = open(log, "wb") if log is not None else None  # noqa: SIM115  # closed below
    proc = subprocess.Popen(
        [
            *("trayer", "--edge", "top", "--align", "right", "--widthtype", "request"),
            *("--height", str(height), "--transparent", "false", "--tint", "0x404040"),
        ],
        env={**os.environ, "DISPLAY": display},
        stdout=subprocess.DEVNULL,
        stderr=out or subprocess.DEVNULL,
    )
    try:
        _wait_for_tray_owner(display, before)
        yield proc
    finally:
        _stop(proc)
        if out is not None:
            out.close()


def _tray_owner(display: str) -> int:
    """The window that owns the system tray selection of screen 0 (0: none)."""
    import Xlib.display

    conn = Xlib.display.Display(display)
    try:
        owner = conn.get_selection_owner(conn.intern_atom("_NET_SYSTEM_TRAY_S0"))
        return owner if isinstance(owner, int) else int(owner.id)  # X.NONE is 0
    finally:
        conn.close()


def _wait_for_tray_owner(display: str, before: int) -> None:
    """Until a window other than `before` owns the system tray selection of screen 0.

    An icon that asked the last owner to dock it would wait for it forever.
    """
    deadline = time.monotonic() + scaled(20)
    while _tray_owner(display) in (0, before):
        if time.monotonic() > deadline:
            raise RuntimeError("trayer did not take the system tray")
        time.sleep(0.05)


def docked_icon(display: str) -> tuple[int, int, int, int] | None:
    """Where our icon sits on screen, once a tray host has taken it in."""
    import Xlib.display
    import Xlib.error

    conn = Xlib.display.Display(display)
    try:
        root = conn.screen().root
        todo: list[Any] = [root]
        while todo:
            window = todo.pop()
            try:
                tree = window.query_tree()
                todo.extend(tree.children)
                if window.get_wm_class() != ("sysboySystemTrayIcon", "sysboy"):
                    continue
                if tree.parent.id == root.id:
                    return None  # not docked (yet)
                geometry = window.get_geometry()
                origin = window.translate_coords(root, 0, 0)
            except Xlib.error.XError:
                # gone while we looked (the tray host makes and drops windows as it docks)
                continue
            return (-origin.x, -origin.y, geometry.width, geometry.height)
        return None
    finally:
        conn.close()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it gives something true, and return that; fail after `timeout`."""
    deadline = time.monotonic() + scaled(timeout)
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return result


@dataclass
class TrayRun:
    """The tray app started under a tray host: its process, where it listens, what it said."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    state: dict[str, Any]
    stderr: str = ""


@contextmanager
def tray_app(display: str, trayer_log: Path | None = None) -> Iterator[TrayRun]:
    """`sysboy` (the tray app, plain X11 backend) docked in trayer, showing `cpu`.

    Yields once the icon has docked and the app says where it listens; afterwards the
    process is gone (killed if the test did not end it) and `stderr` holds its output.
    """
    from sysboy_tray.config import Paths

    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(json.dumps({"metric": "cpu", "port": 0}))
    # PYTHONFAULTHANDLER: an app that hangs prints every thread's stack when sent SIGABRT
    env = {**os.environ, "DISPLAY": display, "PYSTRAY_BACKEND": "xorg", "PYTHONFAULTHANDLER": "1"}
    with trayer(display, log=trayer_log):
        proc = subprocess.Popen(
            [sys.executable, "-m", "sysboy_tray"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = TrayRun(proc, env, {})
        try:
            # a loaded machine takes its time to start Python, the app and the tray
            wait_for(lambda: docked_icon(display), 60, "the tray icon never docked")
            run.state = wait_for(
                lambda: paths.state_file.exists() and json.loads(paths.state_file.read_text()),
                60,
                "the app never wrote where it listens",
            )
            yield run
        finally:
            if proc.poll() is None:
                proc.kill()
            _out, run.stderr = proc.communicate()
