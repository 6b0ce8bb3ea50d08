"""A new version that crashes at start, or never links, goes back to the previous one, and
the PC is told: the whole firmware under MicroPython, paired with the real app, updated
by it to a bundle built from broken sources. The meter, on its old version again, says so
on its first proven link (`update_status` `rolled_back`); the app shows it in `sysboy
status`, the tray's device menu and a notification, whether or not it watched the update.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from sysboy_tray.app import App
from sysboy_tray.commands.status import describe
from sysboy_tray.control_client import ControlClient
from sysboy_tray.firmware_tool import build
from sysboy_tray.tray.icon import TrayIcon
from sysboy_tray.tray.menu import TrayMenu, device_text
from tests import handshake
from tests.conftest import SettableSource, running_app, scaled, until
from tests.firmware.device_sim import SimDevice, firmware_settings
from tests.firmware.test_update_device import on_trial, saved_pointer
from tests.firmware.upy import FIRMWARE
from tests.tray_parts import dummy_tray

DEVICE_ID = "sysboy-back"
TRIAL_S = 10  # the new version's time to link, shortened (SYSBOY_SIM_TRIAL_S)
CRASH = "raise ImportError('a module this build lacks')\n"
# a build whose handshake is wrong: the PC refuses its proof at every try
WRONG_PROOF = "\n\ndef device_proof(*args):\n    return '0' * 64\n"
# a build that never gets as far as starting its own watchdog
HANG = "while True:\n    pass\n"
# the simulated board's watchdog, shortened (SYSBOY_SIM_WDT_MS); a slow machine needs
# more room between the old version's feeds, a second apart
WDT_MS = int(scaled(6000))


def broken_bundle(root: Path, file: str, change: Callable[[str], str]) -> Path:
    """The firmware built as 0.2.0 from its sources with `file` changed by `change`."""
    source = root / "source"
    shutil.copytree(FIRMWARE, source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    path = source / file
    path.write_text(change(path.read_text()))
    out = root / "bundle"
    build(out, source=source, version="0.2.0")
    return out


@pytest.fixture(scope="module")
def crashing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return broken_bundle(tmp_path_factory.mktemp("crashing"), "app.py", lambda s: CRASH + s)


@pytest.fixture(scope="module")
def never_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return broken_bundle(tmp_path_factory.mktemp("unlinked"), "trust.py", lambda s: s + WRONG_PROOF)


@pytest.fixture(scope="module")
def hanging(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return broken_bundle(tmp_path_factory.mktemp("hanging"), "app.py", lambda s: HANG + s)


@contextlib.contextmanager
def app_with(bundle: Path | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """The real app, carrying `bundle` as the firmware it updates meters to."""
    if bundle is not None:
        monkeypatch.setenv("SYSBOY_FIRMWARE_BUNDLE", str(bundle))
    with running_app({"cpu": SettableSource("cpu", 40.0, label="CPU")}, {"metric": "cpu"}) as app:
        yield app


def went_back(reason: str) -> str:
    """The app's words for a rollback it watched."""
    return f"update to 0.2.0 rolled back: the meter went back to its previous version: {reason}"


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), scaled(300)))


def paired_flash(tmp_path: Path, app: App) -> Path:
    """A meter paired with the app as a USB deploy pairs it, told where the app listens."""
    folder = tmp_path / "device"
    pairing = handshake.pair(DEVICE_ID)
    firmware_settings(folder, server=f"127.0.0.1:{app.port}", key=pairing.key, pc=pairing.pc)
    return folder


def status_lines() -> list[str]:
    with ControlClient.find(timeout=scaled(5)) as client:
        return describe(client.status())


async def updated_and_rolled_back(app: App, device: SimDevice, reason: str) -> None:
    """Update the linked meter to the app's (broken) bundle; it must come back on 0.1.0."""
    await until(lambda: app.devices(), "the meter to link")
    await asyncio.to_thread(app.update_firmware, DEVICE_ID)
    await until(lambda: app.updates()[DEVICE_ID].finished, "the update to end", 240)
    update = (await asyncio.to_thread(app.updates))[DEVICE_ID]
    assert (update.state, update.detail) == (
        "rolled back",
        f"the meter went back to its previous version: {reason}",
    ), device.output()
    (view,) = await asyncio.to_thread(app.devices)
    assert view.fw == "0.1.0" and view.update_available  # it may be tried again
    assert view.update == went_back(reason)


def test_a_version_that_crashes_at_start_comes_back_and_the_pc_shows_it(
    crashing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = "it did not start 3 times in a row"

    async def body(app: App, flash: Path, icon: TrayIcon) -> None:
        async with SimDevice(flash, SYSBOY_SIM_ID=DEVICE_ID) as device:
            await updated_and_rolled_back(app, device, reason)
            assert [x for x in device.lines if x.startswith("update: version 0.2.0")] == [
                "update: version 0.2.0 on trial, start 1",
                "update: version 0.2.0 on trial, start 2",
                "update: version 0.2.0 on trial, start 3",
                f"update: version 0.2.0 {reason}; back to the previous one",
            ]
            assert device.resets == 5  # into update mode, into 0.2.0, its three failed starts
            crashes = [x for x in device.lines if x.startswith("start failed: ImportError(")]
            assert len(crashes) == 3, device.output()
            lines = await asyncio.to_thread(status_lines)
            assert any(" fw 0.1.0 " in x for x in lines), lines
            assert any(x.strip() == "firmware: " + went_back(reason) for x in lines), lines
            await asyncio.to_thread(icon.refresh)
            told = [m for t, m in icon._pending if t == "Firmware update"]
            assert told == [f"Meter {DEVICE_ID}: {went_back(reason)}."]
            await device.needle_at(0.4, timeout=30)  # the old version follows the PC again
        # the meter's word is given once: the pointer forgets it once it is sent
        assert "told" not in saved_pointer(flash)

    with app_with(crashing, monkeypatch) as app:
        _menu, icon = dummy_tray(app, tmp_path)
        run(lambda: body(app, paired_flash(tmp_path, app), icon))


def test_a_version_that_never_links_comes_back_and_the_pc_shows_it(
    never_links: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = f"it did not link to the PC within {TRIAL_S} s"

    async def body(app: App, flash: Path) -> None:
        async with SimDevice(
            flash, SYSBOY_SIM_ID=DEVICE_ID, SYSBOY_SIM_TRIAL_S=str(TRIAL_S)
        ) as device:
            await updated_and_rolled_back(app, device, reason)
            assert "update: version 0.2.0 on trial, start 1" in device.lines
            assert (
                f"update: no link to the PC within {TRIAL_S} s: back to the previous version"
                in device.lines
            )
            assert device.resets == 3  # into update mode, into 0.2.0, and back
            lines = await asyncio.to_thread(status_lines)
            assert any(x.strip() == "firmware: " + went_back(reason) for x in lines), lines
            await device.needle_at(0.4, timeout=30)
        assert "told" not in saved_pointer(flash)

    with app_with(never_links, monkeypatch) as app:
        run(lambda: body(app, paired_flash(tmp_path, app)))


def test_a_rollback_the_app_did_not_watch_is_shown_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = "it did not start 3 times in a row"

    async def body(app: App, flash: Path, menu: TrayMenu) -> None:
        async with SimDevice(flash, SYSBOY_SIM_ID=DEVICE_ID) as device:
            await device.needle_at(0.4, timeout=60)  # back on 0.1.0, linked
            assert device.resets == 3
            await until(lambda: app.devices()[0].update, "the app to hear of the rollback")
            (view,) = await asyncio.to_thread(app.devices)
            assert view.update == f"update to 0.2.0 rolled back: {reason}"
            notices = await asyncio.to_thread(app.take_notices)
            assert notices == [
                f"Meter {DEVICE_ID}: update to 0.2.0 rolled back: {reason}; it runs its "
                "previous version."
            ]
            lines = await asyncio.to_thread(status_lines)
            shown_line = f"firmware: update to 0.2.0 rolled back: {reason}"
            assert any(x.strip() == shown_line for x in lines), lines
            (item,) = [i for i in menu.menu().items if str(i.text).startswith("Devices")]
            (shown,) = item.submenu.items
            assert str(shown.text) == device_text(view)
            updating = [str(i.text) for i in shown.submenu.items]
            assert "Update firmware" in updating  # it may be tried again
        assert "told" not in saved_pointer(flash)

    with app_with(None, monkeypatch) as app:
        # the update was sent by the app before it restarted: the new version waits on trial
        flash = paired_flash(tmp_path, app)
        on_trial(flash, "0.2.0", CRASH)
        menu, _icon = dummy_tray(app, tmp_path)
        run(lambda: body(app, flash, menu))


def test_a_version_that_hangs_before_its_watchdog_is_reset_and_comes_back(
    hanging: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a busy loop before the version reaches its own watchdog: only the launcher's one,
    # started before any of the version's code runs (pointer.py), can reset the board
    reason = "it did not start 3 times in a row"

    async def body(app: App, flash: Path) -> None:
        async with SimDevice(
            flash, watchdog=True, SYSBOY_SIM_ID=DEVICE_ID, SYSBOY_SIM_WDT_MS=str(WDT_MS)
        ) as device:
            await updated_and_rolled_back(app, device, reason)
            bites = [x for x in device.lines if x.startswith("watchdog: not fed for ")]
            assert len(bites) == 3, device.output()  # the three starts of 0.2.0, no other
            assert device.resets == 5  # into update mode, into 0.2.0, and its three hangs
            lines = await asyncio.to_thread(status_lines)
            assert any(x.strip() == "firmware: " + went_back(reason) for x in lines), lines
            await device.needle_at(0.4, timeout=30)  # the old version feeds its watchdog
            assert len([x for x in device.lines if x.startswith("watchdog: not fed")]) == 3

    with app_with(hanging, monkeypatch) as app:
        run(lambda: body(app, paired_flash(tmp_path, app)))
