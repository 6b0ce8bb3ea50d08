"""Pairing end to end: the firmware under MicroPython and the real app, by cable and by button.

By cable: the real `sysboy firmware deploy --wifi` (real mpremote, the USB board stand-in of
tests/usb_board.py) writes the compiled firmware and the pairing into the board's flash;
that flash then boots under MicroPython, finds the app by mDNS (a real zeroconf advert on
loopback) and links with the key the deploy made, and a sample moves its needle.

By button: an unpaired meter links; the app, the tray and `sysboy status` say "New meter
found — press its button to pair"; the button is pressed (the sim HAL's button file); both
sides keep the same key, the meter links with it, and status lists it as linked.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray import __version__, firmware_tool
from sysboy_tray.advertise import Advertiser
from sysboy_tray.app import App
from sysboy_tray.cli import main
from sysboy_tray.pairing import PRESS_TO_PAIR
from tests import handshake
from tests.conftest import SettableSource, running_app, scaled, until
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.tray_parts import dummy_tray

RECORDER = Path(__file__).parents[1] / "mpremote_recorder.py"
BOARD_MAC = "240ac4123456"  # what the USB board stand-in's network module gives
WIFI = ("SysboyHome", "hunter2hunter2")  # the simulated radio's home network
NEW_ID = "sysboy-new"
# held while a test's app advertises itself on loopback (every test run on this machine)
MDNS_LOCK = Path(tempfile.gettempdir()) / "sysboy-loopback-mdns.lock"


@pytest.fixture
def app() -> Iterator[App]:
    with running_app({"cpu": SettableSource("cpu", 40.0, label="CPU")}, {"metric": "cpu"}) as app:
        yield app


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), scaled(240)))


@contextlib.asynccontextmanager
async def advertised(app: App) -> Any:
    """The app's mDNS advert on loopback, which the meter asks directly (SYSBOY_MDNS_ADDR).

    One such advert on this machine at a time (tests run in parallel): a meter asked to pair
    takes the first PC that answers, which could be another test's app advertising itself
    for the same meter id, and a unicast to :5353 reaches only one of the sockets sharing it.
    """
    import fcntl  # POSIX, as the MicroPython unix port these tests run is

    with MDNS_LOCK.open("a") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        advert = Advertiser(app.trust.pc_id)
        await advert.start(app.port, ["127.0.0.1"])
        try:
            yield
        finally:
            await advert.stop()


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def pairs(app: App) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(app.paths.pairs_file.read_text())["pairs"]
    return loaded


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def deploy_over_usb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`sysboy firmware deploy --wifi` onto the USB board stand-in; its flash folder."""
    pytest.importorskip("termios", reason="the USB board stand-in is a pseudo-terminal (POSIX)")
    from tests.usb_board import UsbBoard

    bundle = tmp_path / "bundle"
    firmware_tool.build(bundle)
    flash = tmp_path / "flash"
    flash.mkdir()
    monkeypatch.setenv("MPREMOTE_ARGV_LOG", str(tmp_path / "argv.jsonl"))
    monkeypatch.setattr(firmware_tool, "mpremote_command", lambda: [sys.executable, str(RECORDER)])
    monkeypatch.setattr(firmware_tool, "RESET_WAIT_S", 0.0)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": WIFI[1])
    board = UsbBoard(flash, BOARD_MAC)
    try:
        code, printed, errors = cli(
            "firmware", "deploy", "--port", board.port, "--bundle", str(bundle), "--wifi", WIFI[0]
        )
        assert code == 0, printed + errors
        assert f"device id: {BOARD_MAC}" in printed
        board.wait_for_resets(2, scaled(30))  # the board restarts once the deploy is done
    finally:
        board.close()  # the cable comes out; the flash keeps what the deploy wrote
    return flash


def test_a_meter_deployed_over_usb_links_with_the_key_the_deploy_made(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flash = deploy_over_usb(tmp_path, monkeypatch)
    saved = json.loads((flash / "sysboy.json").read_text())
    assert saved["pc"] == app.trust.pc_id
    assert saved["key"] == pairs(app)[BOARD_MAC]["key"] and len(saved["key"]) == 64
    assert saved["server"] == "", "found by mDNS, not told an address"
    assert private(app.paths.pairs_file)
    assert not (flash / "nowatchdog").exists()

    async def body() -> None:
        async with (
            advertised(app),
            # the flash as the deploy left it, its own compiled main.py booting
            SimDevice(
                flash,
                entry=flash / "main.py",
                SYSBOY_SIM_ID=BOARD_MAC,
                SYSBOY_MDNS_ADDR="127.0.0.1",
            ) as device,
        ):
            await device.needle_at(0.4, timeout=60)  # the app's CPU 40 %
            assert "link: the PC proved our key" in device.lines, device.output()
            assert any(line.startswith("discovery: found") for line in device.lines)
            (view,) = await asyncio.to_thread(app.devices)
            assert view.id == BOARD_MAC and view.fw == __version__
            assert await asyncio.to_thread(app.new_meters) == []

    run(body)
    # linking wrote nothing new into the pairing on either side
    after = json.loads((flash / "sysboy.json").read_text())
    assert (after["key"], after["pc"]) == (saved["key"], saved["pc"])
    assert pairs(app)[BOARD_MAC]["key"] == saved["key"]


def test_an_unpaired_meter_is_shown_and_pairs_when_its_button_is_pressed(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flash = tmp_path / "device"
    firmware_settings(flash, key="", pc="")  # never deployed by this PC: no key at all
    menu, icon = dummy_tray(app, tmp_path)

    async def body() -> None:
        async with (
            advertised(app),
            SimDevice(flash, SYSBOY_SIM_ID=NEW_ID, SYSBOY_MDNS_ADDR="127.0.0.1") as device,
        ):
            await until(lambda: app.new_meters(), "the app to see the new meter")
            (waiting,) = await asyncio.to_thread(app.new_meters)
            assert (waiting.id, waiting.address) == (NEW_ID, "127.0.0.1")
            assert 0 < waiting.seconds_left() <= 60
            assert await asyncio.to_thread(app.devices) == []  # not linked: no data for it

            # the tray: a menu line, the tooltip, and one notification
            texts = [str(item.text) for item in menu.menu().items]
            assert f"{PRESS_TO_PAIR} ({NEW_ID})" in texts, texts
            await asyncio.to_thread(icon.refresh)
            assert icon.icon.title.startswith(PRESS_TO_PAIR + " · CPU"), icon.icon.title
            assert icon._pending == [("New meter", f"{PRESS_TO_PAIR}: {NEW_ID} (127.0.0.1).")]

            # `sysboy status`, for a person and as JSON
            code, printed, _ = await asyncio.to_thread(cli, "status")
            assert code == 0
            line = next(x for x in printed.splitlines() if x.startswith(PRESS_TO_PAIR))
            assert line.startswith(f"{PRESS_TO_PAIR}: {NEW_ID} at 127.0.0.1, ")
            assert line.endswith(" s left")
            code, printed, _ = await asyncio.to_thread(cli, "status", "--json")
            (shown,) = json.loads(printed)["new_meters"]
            assert shown["id"] == NEW_ID and shown["address"] == "127.0.0.1"
            assert not app.paths.pairs_file.exists(), "nothing is kept before the press"
            assert device.needle in (None, 0.0), "no needle moves for an unpaired meter"

            # the user presses the meter's button (the sim HAL reads its button file)
            (flash / "button").touch()
            await asyncio.sleep(0.3)
            (flash / "button").unlink()
            await device.needle_at(0.4, timeout=60)  # linked with the new key: CPU 40 %

            lines = device.lines
            paired_at = next(i for i, x in enumerate(lines) if x.startswith("link: paired with"))
            assert lines[paired_at] == f"link: paired with the PC {app.trust.pc_id!r}"
            assert "link: the PC proved our key" in lines[paired_at:]
            saved = json.loads((flash / "sysboy.json").read_text())
            assert saved["pc"] == app.trust.pc_id
            assert saved["key"] == pairs(app)[NEW_ID]["key"] and len(saved["key"]) == 64
            assert private(app.paths.pairs_file)

            # status now lists it as a linked meter, and no longer as waiting
            assert await asyncio.to_thread(app.new_meters) == []
            code, printed, _ = await asyncio.to_thread(cli, "status", "--json")
            status = json.loads(printed)
            assert status["new_meters"] == []
            assert [d["id"] for d in status["devices"]] == [NEW_ID]
            code, printed, _ = await asyncio.to_thread(cli, "status")
            assert PRESS_TO_PAIR not in printed
            assert any(x.split()[:1] == [NEW_ID] for x in printed.splitlines()), printed
            texts = [str(item.text) for item in menu.menu().items]
            assert not any(t.startswith(PRESS_TO_PAIR) for t in texts), texts
            await asyncio.to_thread(icon.refresh)
            assert icon.icon.title == "CPU 40.0 % · 1 device"

    run(body)


def test_a_forgotten_meter_pairs_again_by_a_long_press(app: App, tmp_path: Path) -> None:
    flash = tmp_path / "device"
    old = handshake.pair(NEW_ID)  # paired over USB, as a deploy pairs it
    firmware_settings(flash, key=old.key, pc=old.pc)

    async def body() -> None:
        async with (
            advertised(app),
            SimDevice(flash, SYSBOY_SIM_ID=NEW_ID, SYSBOY_MDNS_ADDR="127.0.0.1") as device,
        ):
            await device.needle_at(0.4, timeout=60)
            await asyncio.to_thread(app.forget, NEW_ID)  # the tray's Devices ▸ meter ▸ Forget
            await device.needle_at(0.0)  # its link ends at once: parked
            assert NEW_ID not in pairs(app)
            # it knows its PC no more: each try is refused, at its remembered address and
            # then where discovery finds it, which it then passes over
            await device.wait_for(
                lambda: (
                    sum(x.startswith("link: ") and "is not our PC" in x for x in device.lines) >= 4
                ),
                "the forgotten meter to be refused at both addresses",
                timeout=60,
            )
            assert await asyncio.to_thread(app.devices) == []
            assert await asyncio.to_thread(app.new_meters) == []  # it names its old PC

            # a long press (1 to 5 s) while not linked: it pairs with the PC that answers
            (flash / "button").touch()
            await asyncio.sleep(1.5)
            (flash / "button").unlink()
            await until(lambda: app.devices(), "the meter to link again")
            await device.needle_at(0.4, timeout=30)
            saved = json.loads((flash / "sysboy.json").read_text())
            key = pairs(app)[NEW_ID]["key"]
            assert saved["key"] == key != old.key and saved["pc"] == app.trust.pc_id
            assert private(app.paths.pairs_file)

    run(body)
