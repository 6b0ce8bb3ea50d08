"""`sysboy firmware deploy --wifi`: set up over USB, with the real mpremote.

The board is tests/usb_board.py: a pseudo-terminal speaking MicroPython's raw REPL, where
the real MicroPython unix port runs what mpremote sends (the deployed .mpy files
included) and each reset is noted. mpremote's command lines are recorded on the way
(tests/mpremote_recorder.py), as anyone on the PC could read them from the process list.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray import firmware_tool
from sysboy_tray.cli import main
from tests.conftest import scaled

pytest.importorskip("termios", reason="the USB board stand-in is a pseudo-terminal (POSIX)")
from tests.usb_board import UsbBoard

RECORDER = Path(__file__).parent / "mpremote_recorder.py"
PASSWORD = "correct horse 7battery"


class Board:
    """The USB board, its flash and the mpremote command lines run against it."""

    def __init__(
        self, root: Path, mac: str = "240ac4123456", native_usb_s: float | None = None
    ) -> None:
        self.flash = root / "flash"
        self.flash.mkdir(parents=True)
        self.argv_log = root / "argv.jsonl"
        self.usb = UsbBoard(self.flash, mac, native_usb_s)
        self.port = Path(self.usb.port)

    def runs(self) -> list[list[str]]:
        if not self.argv_log.exists():
            return []
        return [json.loads(line) for line in self.argv_log.read_text().splitlines()]

    def resets(self, count: int) -> list[dict[str, Any]]:
        """The board's resets, once `count` have happened."""
        return self.usb.wait_for_resets(count, scaled(30))

    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.flash / "sysboy.json").read_text())
        return loaded


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "bundle"
    firmware_tool.build(out)
    return out


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Board]:
    made = Board(tmp_path)
    monkeypatch.setenv("MPREMOTE_ARGV_LOG", str(made.argv_log))
    monkeypatch.setenv("SYSBOY_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr(firmware_tool, "mpremote_command", lambda: [sys.executable, str(RECORDER)])
    monkeypatch.setattr(firmware_tool, "RESET_WAIT_S", 0.0)
    yield made
    made.usb.close()


def _deploy(*argv: str, typed: str = PASSWORD) -> tuple[int, str, str, list[str]]:
    """Run `sysboy firmware deploy ARGV`; the password is typed at getpass's prompt."""
    prompts: list[str] = []

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return typed

    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        patch.setattr("getpass.getpass", getpass)
        code = main(["firmware", "deploy", *argv])
    return code, out.getvalue(), err.getvalue(), prompts


def _install_id(config_dir: Path) -> str:
    install_id: str = json.loads((config_dir / "settings.json").read_text())["install_id"]
    return install_id


def test_deploy_with_wifi_sets_the_meter_up_and_the_password_shows_nowhere(
    board: Board, bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # a meter already in use: its own settings survive the deploy
    (board.flash / "sysboy.json").write_text(json.dumps({"version": 1, "idle_park_s": 42}))
    code, printed, errors, prompts = _deploy(
        "--port", str(board.port), "--bundle", str(bundle), "--wifi", "Home Net"
    )
    assert code == 0, printed + errors
    assert prompts == ["Password for the Wi-Fi network 'Home Net' (empty if open): "]

    saved = board.config()
    assert saved["ssid"] == "Home Net"
    assert saved["password"] == PASSWORD
    assert saved["pc"] == _install_id(tmp_path / "config")
    # paired by the cable: the board's id (its MAC) holds the same key on both sides
    pairs = json.loads((tmp_path / "config" / "pairs.json").read_text())["pairs"]
    assert saved["key"] == pairs["240ac4123456"]["key"] and len(saved["key"]) == 64
    assert saved["idle_park_s"] == 42
    assert saved["wrong_password_count"] == 0
    ap_password = saved["ap_password"]
    assert 8 <= len(ap_password) <= 63
    assert f"its setup network's password, should you ever need it: {ap_password}" in printed
    assert "the meter joins 'Home Net'" in printed
    assert "device id: 240ac4123456" in printed  # the board's MAC, read before the copy

    # the password never reached a command line, the screen or the log
    runs = board.runs()
    assert runs, "mpremote ran"
    for argv in runs:
        assert not any(PASSWORD in arg for arg in argv), argv
    assert PASSWORD not in printed + errors
    assert not any(PASSWORD in record.getMessage() for record in caplog.records)
    # the file that carried it is gone from the PC and from the board
    carried = [Path(a) for argv in runs for a in argv if a.endswith(firmware_tool.SETUP_FILE)]
    assert carried and not any(path.exists() for path in carried)
    assert not (board.flash / firmware_tool.SETUP_FILE).exists()

    # the flag first (and a reset), then the copy, then the flag cleared and a reset
    first, second = runs[1:]  # runs[0] listed the serial ports
    assert "nowatchdog" in " ".join(first) and first[-2:] == ["+", "reset"]
    assert second[-2:] == ["+", "reset"]
    assert "os.remove('nowatchdog')" in second[-3]
    assert [r["flag"] for r in board.resets(2)] == [True, False]
    assert not (board.flash / "nowatchdog").exists()
    assert board.resets(2)[-1]["watchdog"] == "on"  # the new firmware starts its watchdog


def test_a_redeploy_starts_the_old_firmware_without_its_watchdog(
    board: Board, bundle: Path
) -> None:
    assert _deploy("--port", str(board.port), "--bundle", str(bundle))[0] == 0
    first_ap_password = board.config()["ap_password"]
    code, printed, errors, prompts = _deploy("--port", str(board.port), "--bundle", str(bundle))
    assert code == 0, printed + errors
    assert prompts == [], "no --wifi: no password asked"
    # the firmware on the board honours the flag: the copy cannot be cut by the watchdog
    assert board.resets(4)[2:] == [
        {"flag": True, "watchdog": "off"},
        {"flag": False, "watchdog": "on"},
    ]
    saved = board.config()
    assert saved["ssid"] == "" and saved["pc"]
    assert saved["ap_password"] != first_ap_password, "a fresh password at each deploy"
    assert "join its Sysboy-XXXX Wi-Fi" in printed


@pytest.mark.parametrize(
    ("typed", "words"),
    [("short", "8 to 63 plain characters"), ("x" * 64, "8 to 63 plain characters")],
)
def test_a_password_the_network_cannot_have_is_refused_before_the_board_is_touched(
    board: Board, bundle: Path, typed: str, words: str
) -> None:
    code, printed, errors, _ = _deploy(
        "--port", str(board.port), "--bundle", str(bundle), "--wifi", "Home", typed=typed
    )
    assert code == 1
    assert words in errors and len(errors.strip().splitlines()) == 1
    assert typed not in printed + errors
    assert board.runs() == [["connect", "list"]], "nothing ran on the board"


def test_an_open_network_needs_no_password(board: Board, bundle: Path) -> None:
    code, printed, errors, _ = _deploy(
        "--port", str(board.port), "--bundle", str(bundle), "--wifi", "Cafe", typed=""
    )
    assert code == 0, printed + errors
    assert board.config()["ssid"] == "Cafe" and board.config()["password"] == ""


def test_a_copy_cut_short_leaves_the_flag_so_the_next_deploy_is_safe(
    board: Board, bundle: Path
) -> None:
    assert _deploy("--port", str(board.port), "--bundle", str(bundle))[0] == 0
    (board.flash / "app.mpy").unlink()  # to see the copy begin again

    def pull_the_cable_during_the_copy() -> None:
        deadline = time.monotonic() + scaled(60)
        while not (board.flash / "app.mpy").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        board.usb.close()

    puller = threading.Thread(target=pull_the_cable_during_the_copy)
    puller.start()
    try:
        code, printed, errors, _ = _deploy(
            "--port", str(board.port), "--bundle", str(bundle), "--wifi", "Home"
        )
    finally:
        puller.join()
    assert code == 1
    assert errors.startswith(f"sysboy: Copying to the board on {board.port} failed: ")
    assert len(errors.strip().splitlines()) == 1
    assert PASSWORD not in printed + errors
    assert (board.flash / "nowatchdog").exists(), "the board keeps starting without a watchdog"
    carried = [Path(a) for a in board.runs()[-1] if a.endswith(firmware_tool.SETUP_FILE)]
    assert carried and not carried[0].exists(), "the password's file is gone from the PC"
    assert board.config()["ssid"] == ""


def test_a_board_that_does_not_come_back_is_told_in_words(
    board: Board, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(firmware_tool, "PORT_BACK_S", 1.0)

    def pull_the_cable(device_id: str) -> dict[str, Any]:
        board.usb.close()  # while it restarts without its watchdog
        return firmware_tool.device_settings("ab12cd34", firmware_tool.check_wifi("Home", PASSWORD))

    with pytest.raises(firmware_tool.FirmwareError) as failure:
        firmware_tool.deploy(bundle, str(board.port), settings=pull_the_cable)
    assert str(failure.value) == (
        f"The board on {board.port} did not come back after its restart: unplug it, plug it "
        "in again and run the deploy once more."
    )
    assert (board.flash / "nowatchdog").exists()


def test_a_setting_the_firmware_does_not_keep_fails_the_deploy_by_name(
    board: Board, bundle: Path
) -> None:
    settings = firmware_tool.device_settings("ab12cd34", firmware_tool.check_wifi("Home", PASSWORD))
    settings["bogus"] = "never kept"  # a key the firmware's config does not know
    lines: list[str] = []
    with pytest.raises(firmware_tool.FirmwareError) as failure:
        firmware_tool.deploy(bundle, str(board.port), progress=lines.append, settings=settings)
    assert "did not keep these settings: bogus" in str(failure.value)
    assert PASSWORD not in str(failure.value) + "\n".join(lines)
    assert not (board.flash / firmware_tool.SETUP_FILE).exists()


def test_the_settings_can_depend_on_the_id_the_board_gives(
    board: Board, bundle: Path, tmp_path: Path
) -> None:
    other = Board(tmp_path / "other", mac="a1b2c3d4e5f6")
    asked: list[str] = []

    def settings_for(device_id: str) -> dict[str, Any]:
        asked.append(device_id)
        return {"pc": "pc-for-" + device_id}

    try:
        assert firmware_tool.deploy(bundle, str(other.port), settings=settings_for) == (
            "a1b2c3d4e5f6"
        )
    finally:
        other.usb.close()
    assert asked == ["a1b2c3d4e5f6"]
    assert other.config()["pc"] == "pc-for-a1b2c3d4e5f6"


def test_a_board_with_native_usb_is_waited_for_after_its_restart(
    board: Board, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its port is gone for longer than the first pause after the restart
    monkeypatch.setattr(firmware_tool, "RESET_WAIT_S", 1.0)
    native = Board(tmp_path / "native", native_usb_s=4.0)
    try:
        code, printed, errors, _ = _deploy("--port", str(native.port), "--bundle", str(bundle))
        assert code == 0, printed + errors
        assert [r["flag"] for r in native.resets(2)] == [True, False]
        assert native.config()["pc"]
    finally:
        native.usb.close()
