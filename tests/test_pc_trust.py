"""The PC side of trust: the CLI tells its own app from a stranger, and network text is
never printed raw (issue 11, must-show 8 and 9)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from bench.bench_hostile import STRANGER, RawLink, frame, link_as
from bench.live import HELLO, Server, start_server
from sysboy_tray.commands.status import describe
from sysboy_tray.config import Paths
from sysboy_tray.control import new_token
from sysboy_tray.control_client import AppStatus, DeviceStatus, MetricStatus, NewMeterStatus
from sysboy_tray.logs import SafeFormatter
from sysboy_tray.pairing import PRESS_TO_PAIR
from sysboy_tray.terminal import json_text, printable
from sysboy_tray.tray.icon import tooltip
from tests.conftest import scaled

# OSC 52 sets the terminal's clipboard; CSI 2J clears the screen; U+009B is a one-byte CSI
OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def sysboy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sysboy_tray", *args],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        stdin=subprocess.DEVNULL,
        env=env,
    )


def no_raw_controls(text: str) -> bool:
    return not any(c in text for c in RAW)


# -- 8. a stale running.json whose port a stranger holds ----------------------------------------


class Stranger:
    """A WebSocket server on a port that running.json names: it records all it is sent."""

    def __init__(self) -> None:
        self.connections = 0
        self.seen: list[str] = []
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        self.seen.append(str(ws.request.headers))
        # it pretends to be the app, with a proof it cannot make
        nonce = ws.request.headers.get("Sysboy-Nonce", "")
        ws.send(json.dumps({"nonce": nonce or "0" * 64, "proof": "ab" * 32}))
        try:
            while True:
                self.seen.append(str(ws.recv(scaled(2))))
        except (TimeoutError, ConnectionClosed):
            pass

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(scaled(5))


@pytest.fixture
def stranger() -> Iterator[Stranger]:
    holder = Stranger()
    yield holder
    holder.close()


def write_state(port: int, pid: int, started: float) -> None:
    paths = Paths.default()
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    paths.state_file.write_text(json.dumps({"port": port, "pid": pid, "started": started}))


def test_a_dead_app_s_port_gets_nothing(user_dirs: Path, stranger: Stranger) -> None:
    token = new_token(Paths.default().token_file)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_state(stranger.port, gone.pid, time.time() - 60)
    done = sysboy("status")
    assert done.returncode == 3, done.stderr
    assert "left from a run that ended" in done.stderr
    assert stranger.connections == 0
    assert token not in "".join(stranger.seen)


def test_a_live_process_of_this_user_but_a_stranger_on_the_port_gets_no_token(
    user_dirs: Path, stranger: Stranger
) -> None:
    """The pid was reused by another of the user's programs; a stranger holds the port."""
    token = new_token(Paths.default().token_file)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_state(stranger.port, other.pid, psutil.Process(other.pid).create_time())
        for args in (("status",), ("push", "build", "5"), ("metric", "cpu")):
            done = sysboy(*args)
            assert done.returncode == 1, done.stderr
            assert "could not prove that it is your Sysboy" in done.stderr
    finally:
        other.kill()
        other.wait()
    assert stranger.connections == 3
    seen = "".join(stranger.seen)
    # it saw three upgrade requests, each with a fresh nonce, and not one frame after
    assert seen.count("Sysboy-Nonce") == 3 and '"op"' not in seen
    assert token not in seen and "Authorization" not in seen


@pytest.mark.skipif(
    not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to run as another user"
)
def test_a_process_of_another_user_is_not_trusted(user_dirs: Path, stranger: Stranger) -> None:
    new_token(Paths.default().token_file)

    def as_nobody() -> None:
        os.setgid(65534)
        os.setuid(65534)

    other = subprocess.Popen(["sleep", "60"], preexec_fn=as_nobody)
    try:
        write_state(stranger.port, other.pid, psutil.Process(other.pid).create_time())
        done = sysboy("status")
    finally:
        other.kill()
        other.wait()
    assert done.returncode == 3, done.stderr
    assert "which is not yours" in done.stderr
    assert stranger.connections == 0


# -- 9. network text never reaches a terminal raw ------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server(interval=0.2)
    yield running
    running.stop()


def test_a_hostile_meter_s_escape_codes_reach_neither_status_nor_the_log(server: Server) -> None:
    async def hostile() -> list[str]:
        # refused by the protocol (control characters): the link is closed
        for hello in (
            {**HELLO, "id": "evil-1", "name": OSC52},
            {**HELLO, "id": "evil-2", "fw": "\x1b[2J", "board": "\x9b31m"},
        ):
            link = await RawLink.open(server.port, source=STRANGER)
            await link.send(frame(json.dumps(hello).encode()))
            await link.until_closed()
            link.close()
        # taken by the protocol (no control character), but it reverses what follows it
        # a paired meter, so it links: taken by the protocol (no control character),
        # but its name reverses what follows it
        link = await RawLink.open(server.port, source=STRANGER)
        await link_as(link, server.port, "evil-3", name="met\u202eer")
        await link.send(frame(json.dumps({"type": "error", "reason": "x\u202ey"}).encode()))
        await link.send(frame(json.dumps({"type": "error", "reason": OSC52}).encode()))
        outputs = []
        for args in (("status",), ("status", "--json")):
            done = await asyncio.to_thread(sysboy, *args, env=server.env)
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout + done.stderr)
        link.close()
        return outputs

    text, as_json = asyncio.run(hostile())
    assert no_raw_controls(text) and no_raw_controls(as_json)
    assert "met\\u202eer" in text  # shown as an escape, in its place in the list
    assert any(d["name"] == "met\u202eer" for d in json.loads(as_json)["devices"])
    time.sleep(0.5)  # the server's last lines reach its log
    logs = Path(server.env["SYSBOY_LOG_DIR"])
    for path in logs.iterdir():
        written = path.read_text("utf-8", "replace")
        assert no_raw_controls(written), path.name
        if path.name.startswith("stderr"):  # the console
            assert "device evil-3 reports: 'x\\u202ey'" in written


def test_status_shows_network_strings_escaped() -> None:
    device = DeviceStatus(
        "dev-a", OSC52, "127.0.0.2", "\x9b31m", "\x1b[2J", "cpu", -40, ((0.0, 0.0), (100.0, 1.0))
    )
    metric = MetricStatus("cpu", "C\u202ePU", "%", False, True, True, None, 12.0, "\x07")
    status = AppStatus("1", 47800, ("192.0.2.1",), (), "cpu", 1.0, (device,), (metric,))
    lines = [printable(line) for line in describe(status)]
    text = "\n".join(lines)
    assert no_raw_controls(text)
    assert "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in text  # shown, not obeyed
    assert "C\\u202ePU" in text
    as_json = json_text({"name": OSC52, "board": "\x9b31m", "label": "é\u202e"})
    assert no_raw_controls(as_json)
    assert json.loads(as_json) == {"name": OSC52, "board": "\x9b31m", "label": "é\u202e"}


def test_status_and_tooltip_say_which_new_meters_wait_for_their_button() -> None:
    waiting = (
        NewMeterStatus("02ab", "Shelf", "192.0.2.7", 42),
        NewMeterStatus("02cd", "02cd", "192.0.2.8", 5),  # no name of its own
    )
    status = AppStatus("1", 47800, ("192.0.2.1",), (), "cpu", 1.0, (), (), new_meters=waiting)
    lines = describe(status)
    assert f"{PRESS_TO_PAIR}: Shelf (02ab) at 192.0.2.7, 42 s left" in lines
    assert f"{PRESS_TO_PAIR}: 02cd at 192.0.2.8, 5 s left" in lines
    assert "Devices: none connected" in lines  # waiting to pair is not linked
    paired = dataclasses.replace(status, new_meters=())
    assert not any(PRESS_TO_PAIR in line for line in describe(paired))
    assert tooltip("CPU", None, 0, "", 2) == f"{PRESS_TO_PAIR} (2 meters) · CPU · 0 devices"
    assert tooltip("CPU", None, 0, "", 1) == f"{PRESS_TO_PAIR} · CPU · 0 devices"


def test_the_log_writes_network_strings_as_escapes() -> None:
    record = logging.LogRecord(
        "sysboy_tray.session",
        logging.WARNING,
        __file__,
        1,
        "device %s reports: %s",
        ("x", OSC52),
        None,
    )
    line = SafeFormatter("%(levelname)s %(message)s").format(record)
    assert no_raw_controls(line) and "\n" not in line
    assert "\\x1b]52" in line
    forged = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "name %s", ("ok\nERROR forged line",), None
    )
    assert "\n" not in SafeFormatter("%(message)s").format(forged)
