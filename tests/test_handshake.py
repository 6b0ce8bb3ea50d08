"""The PC's side of the handshake with real clients: strangers, pairing by button, old firmware."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from sysboy_tray.app import App
from tests import handshake
from tests.conftest import SettableSource, running_app, scaled
from tests.meter import Meter

STRANGER = "127.0.0.2"


@pytest.fixture
def app() -> Iterator[App]:
    with running_app({"cpu": SettableSource("cpu", 12.5)}, {"metric": "cpu"}) as running:
        yield running


async def _until_closed(ws: Any) -> list[dict[str, Any]]:
    got = []
    try:
        async with asyncio.timeout(scaled(10)):
            async for text in ws:
                got.append(json.loads(text))
    except ConnectionClosed:
        pass
    return got


def test_a_stranger_with_a_paired_meters_id_is_refused_and_the_meter_stays_linked(
    app: App,
) -> None:
    with Meter(app.port, "desk") as meter:
        meter.wait_for("cpu")
        linked = app.on_loop(lambda: app.hub.sessions["desk"])
        wrong = handshake.Pairing("0f" * 32, meter.pairing.pc)  # the id, not the key

        async def stranger() -> tuple[dict[str, Any], list[dict[str, Any]], int | None]:
            url = f"ws://127.0.0.1:{app.port}/device"
            async with connect(url, local_addr=(STRANGER, 0)) as ws:
                mine = handshake.hello("desk", wrong)
                await ws.send(json.dumps(mine))
                theirs = json.loads(await ws.recv())
                bad = {"type": "proof", "mac": "00" * 32}
                await ws.send(json.dumps(bad))
                return theirs, await _until_closed(ws), ws.close_code

        theirs, after, code = asyncio.run(stranger())
        assert theirs["paired"] is True  # the PC holds a key for this id ...
        with pytest.raises(AssertionError):
            handshake.proof(handshake.hello("desk", wrong), theirs, wrong)  # ... not this one
        assert code == 1008 and [m["type"] for m in after] == ["error"]
        count = len(meter.of_type("cpu"))
        # the real meter is still served (a value that does not move comes every 5 s)
        meter.wait_for("cpu", count + 1, timeout=15)
        assert app.on_loop(lambda: app.hub.sessions["desk"]) is linked


def test_an_unpaired_meter_is_shown_as_new_and_pairs_by_its_button(app: App) -> None:
    async def new_meter() -> tuple[dict[str, Any], list[str], dict[str, Any]]:
        async with connect(f"ws://127.0.0.1:{app.port}/device") as ws:
            await ws.send(json.dumps(handshake.hello("fresh", None, name="Shelf")))
            theirs = json.loads(await ws.recv())
            waiting = app.on_loop(lambda: [m.name for m in app.trust.new_meters.waiting()])
            await ws.send('{"type": "pair"}')  # the button was pressed
            grant = json.loads(await ws.recv())
            return theirs, waiting, grant

    theirs, waiting, grant = asyncio.run(new_meter())
    assert theirs["paired"] is False and "proof" not in theirs
    assert waiting == ["Shelf"]
    assert grant["type"] == "pair" and grant["pc"] == app.trust.pc_id
    assert app.trust.pairs.key_for("fresh") == grant["key"]
    assert stat.S_IMODE(os.stat(app.paths.pairs_file).st_mode) == 0o600
    assert app.on_loop(lambda: app.trust.new_meters.waiting()) == []
    # with the key it got, the meter links
    with Meter(app.port, "fresh", pairing=handshake.Pairing(grant["key"], grant["pc"])) as meter:
        meter.wait_for("cpu")


def test_before_the_proof_the_pc_sends_nothing_but_hello_and_error(app: App) -> None:
    async def keyless() -> list[dict[str, Any]]:
        async with connect(f"ws://127.0.0.1:{app.port}/device", local_addr=(STRANGER, 0)) as ws:
            await ws.send(json.dumps(handshake.hello("nobody", None)))
            await ws.send('{"type": "button", "event": "press"}')
            return await _until_closed(ws)

    got = asyncio.run(keyless())
    assert [m["type"] for m in got] == ["hello", "error"]
    assert "nobody" not in app.store.settings.devices
    assert app.trust.pairs.key_for("nobody") is None


def test_a_v1_meter_is_told_to_update_over_usb(app: App) -> None:
    old = {"type": "hello", "proto": 1, "id": "old", "fw": "0.0.9", "board": "esp32"}
    old.update(output="dac", calibration=[[0, 0], [100, 1]])

    async def talk() -> tuple[list[dict[str, Any]], int | None]:
        async with connect(f"ws://127.0.0.1:{app.port}/device") as ws:
            await ws.send(json.dumps(old))
            return await _until_closed(ws), ws.close_code

    got, code = asyncio.run(talk())
    assert got == [{"type": "error", "reason": "firmware too old to pair: update it over USB"}]
    assert code == 1008
