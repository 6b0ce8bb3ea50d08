"""A first run on a PC without a GPU, and a metric with nothing to show.

The first run takes VRAM only when it can be read, else CPU. A metric the user chose is
kept even when it cannot be read; the device then gets `park` frames (with the metric
and its label) instead of samples, often enough that its link never times out.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from sysboy_tray import session as session_module
from sysboy_tray.app import App
from sysboy_tray.config import Paths
from sysboy_tray.simulator.device import device_id, find_micropython
from tests import handshake
from tests.conftest import SettableSource, running_app, scaled
from tests.console import Console, child_env, sysboy, sysboy_argv
from tests.test_metrics_command import has_gpu


async def recv(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), scaled(timeout)))
    assert isinstance(message, dict)
    return message


def url(app: App) -> str:
    return f"ws://127.0.0.1:{app.port}/device"


@pytest.mark.skipif(has_gpu(), reason="this PC has a GPU: the first run would take VRAM")
def test_first_run_without_a_gpu_shows_cpu_within_4_s() -> None:
    paths = Paths.default()
    assert not paths.settings_file.exists()
    server = Console(
        sysboy_argv("serve", "--port", "0", "--no-mdns"), env=child_env(), merge_stderr=False
    )
    try:
        line = server.lines[server.wait_line("listening on ", timeout=30)]
        found = re.search(r":(\d+)/device", line)
        assert found, line

        async def device() -> list[dict[str, Any]]:
            async with connect(f"ws://127.0.0.1:{found.group(1)}/device") as ws:
                await handshake.alink(ws, "first-run", handshake.pair("first-run"))
                welcome = await recv(ws)
                async with asyncio.timeout(scaled(4)):
                    while (sample := await recv(ws))["type"] != welcome["needles"][0]:
                        pass
                return [welcome, sample]

        welcome, sample = asyncio.run(device())
        assert welcome["needles"] == ["cpu"]
        assert sample["type"] == "cpu" and 0 <= sample["value"] <= 100
        status = sysboy("status")
        assert status.returncode == 0, status.stderr
        assert "First run: the needles show cpu (VRAM cannot be read: " in status.stdout
    finally:
        server.stop()
    log = (paths.log_dir / "sysboy.log").read_text()
    assert "first run: the needles show cpu (VRAM cannot be read: " in log
    assert json.loads(paths.settings_file.read_text())["metric"] == "cpu"  # kept from now on


def test_first_run_with_a_readable_vram_shows_vram() -> None:
    sources = {"vram": SettableSource("vram", 40.0), "cpu": SettableSource("cpu", 10.0)}
    with running_app(sources) as app:
        assert app.hub.global_metric == "vram"
        assert app.metric_note == "first run: the needles show vram (the GPU's memory can be read)"


def test_a_chosen_metric_that_cannot_be_read_is_kept_and_the_link_kept_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_module, "HEARTBEAT_S", 0.3)  # the beat, quicker
    sources = {"vram": SettableSource("vram", None), "cpu": SettableSource("cpu", 10.0)}
    with running_app(sources, {"metric": "vram"}) as app:
        assert app.hub.global_metric == "vram" and app.metric_note == ""

        async def device() -> list[dict[str, Any]]:
            async with connect(url(app)) as ws:
                await handshake.alink(ws, "no-gpu", handshake.pair("no-gpu"))
                assert (await recv(ws))["needles"] == ["vram"]
                return [await recv(ws, timeout=2) for _ in range(4)]

        frames = asyncio.run(device())
    for frame in frames:  # the first, then the beats
        assert frame == {
            "type": "park",
            "reason": "unavailable",
            "metric": "vram",
            "label": "VRAM",
        }
    assert json.loads(app.paths.settings_file.read_text())["metric"] == "vram"


def test_an_expired_push_keeps_its_label() -> None:
    sources = {"cpu": SettableSource("cpu", 10.0)}
    with running_app(sources, {"metric": "cpu", "custom_ttl_s": 1}) as app:

        async def device() -> dict[str, Any]:
            async with connect(url(app)) as ws:
                await handshake.alink(ws, "pushed", handshake.pair("pushed"))
                await recv(ws)
                await asyncio.to_thread(app.push, "build", 40.0, "%", "Build")
                await asyncio.to_thread(app.set_metric, "build", "pushed")
                while (frame := await recv(ws))["type"] != "park":
                    assert frame["type"] in ("build", "cpu"), frame
                return frame

        park = asyncio.run(device())
        assert park == {"type": "park", "reason": "unavailable", "metric": "build"} | {
            "label": "Build"
        }
        infos = {m.id: m for m in app.metric_infos()}
        assert infos["build"].label == "Build"  # what the tray shows, too
        assert not app.readings()["build"].available
        app.push("build", 55.0)  # pushed again: back, with the same label
        assert {m.id: m.label for m in app.metric_infos()}["build"] == "Build"


# a minute and half a beat: the beats then fall well inside the watch, not at its edges
WATCH_S = 62.5
PARKED = "link: park (unavailable)"
GOODBYE = "link: park (quit)"
BEAT_S = 5.0  # the PC's heartbeat (session.HEARTBEAT_S), a sixth of the device's patience


@pytest.mark.skipif(find_micropython() is None, reason="needs the MicroPython unix port")
def test_after_a_push_expires_the_device_keeps_its_link_for_a_minute(
    user_dirs: Path,
) -> None:
    """The real firmware: it would relink after 30 s of silence; it never has to."""
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "ram", "custom_ttl_s": 3}))
    server = Console(
        sysboy_argv("serve", "--port", "0", "--no-mdns"), env=child_env(), merge_stderr=False
    )
    sim: Console | None = None
    try:
        line = server.lines[server.wait_line("listening on ", timeout=30)]
        found = re.search(r":(\d+)/device", line)
        assert found, line
        sim = Console(
            sysboy_argv(
                "simulate", "--headless", "--server", f"127.0.0.1:{found.group(1)}",
                "--runtime", "micropython",
            ),
            env=child_env(),
        )  # fmt: skip
        sim.wait_line("state nodata", "the device to link", timeout=30)
        assert sysboy("push", "demo", "40", "--label", "Demo").returncode == 0
        assert sysboy("metric", "demo", "--device", device_id("sim")).returncode == 0
        sim.wait_line("metric demo Demo", timeout=20)
        expired = sim.wait_line(PARKED, "the push to expire", timeout=20)
        time.sleep(WATCH_S)  # a real minute, whatever the timeout factor
        # The PC parks the needle as it quits: that line ends the watch in the same pipe as
        # the beats, so a loaded machine that holds the lines up cannot lose one from it.
        server.stop()

        def goodbye(lines: list[str]) -> int | None:
            # `in`: the simulator's stdout and stderr share one pipe, so a line may carry
            # the start of the other stream's next one
            return next((i for i in range(expired, len(lines)) if GOODBYE in lines[i]), None)

        end = sim.wait_for(goodbye, "the PC's goodbye", timeout=20)
        assert isinstance(end, int)
        watched = sim.lines[expired:end]
        beats = sum(1 for text in watched[1:] if PARKED in text)
        # when each park reached the test, from the expiry's: says which beat came late
        heard = [
            round(sim.times[i] - sim.times[expired], 2)
            for i in range(expired, end + 1)
            if PARKED in sim.lines[i] or GOODBYE in sim.lines[i]
        ]
        # a park every 5 s, none missed: each comes within two beats of the last (a missed
        # one leaves a 10 s gap), and 12 in the 62.5 s watched. The PC times each beat from
        # the frame before it, so on a loaded machine the beats drift late by a little each
        # time and the twelfth may fall after the watch: 11 then, with no gap, is enough.
        parks = heard[:-1]  # the expiry's park, then each beat (the goodbye is last)
        gaps = [round(later - earlier, 2) for earlier, later in itertools.pairwise(parks)]
        assert all(gap < 2 * BEAT_S - 1 for gap in gaps), (gaps, sim.output())
        assert beats >= int(WATCH_S // BEAT_S) - 1, (beats, heard, sim.output())
        assert sum(1 for text in sim.lines[:end] if "link: connected" in text) == 1
        assert not any("no word from the PC" in text for text in sim.lines), sim.output()
        shown = [text for text in sim.lines[:end] if text.startswith("metric ")]
        assert shown[-1] == "metric demo Demo", shown  # the pushed label, not the id
        assert [t for t in sim.lines[:end] if t.startswith("state ")][-1] == "state nodata"
    finally:
        if sim is not None:
            sim.stop()
        server.stop()
