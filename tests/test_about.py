"""About: the text, the window under Xvfb (selectable paths, folder buttons), and the log
folder when no file manager can be started."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysboy_tray.config import Paths
from tests.conftest import scaled
from tests.debian import need
from tests.test_control_cli import serve, sysboy, sysboy_command
from tests.xvfb import wait_for, xvfb

__all__ = ["serve"]  # the fixture, used by name


def test_about_names_the_paths_and_each_reason_once(serve: int) -> None:
    status = json.loads(sysboy("status", "--json").stdout)
    missing = [m for m in status["metrics"] if not m["available"] and m["reason"]]
    about = sysboy("about")
    assert about.returncode == 0, about.stderr
    paths = Paths.default()
    lines = about.stdout.splitlines()
    assert f"Settings: {paths.settings_file}" in lines
    assert f"Logs: {paths.log_dir}" in lines
    assert f"Running, listening on port {serve}" in lines
    for reason in {m["reason"] for m in missing}:
        assert about.stdout.count(reason) == 1  # the full sentence once, not per metric
    told = [line for line in lines if line.startswith("Not available: ")]
    assert len(told) == len({m["reason"] for m in missing})


@pytest.fixture
def display() -> Iterator[str]:
    need("xdotool", "python3-tk")
    with xvfb(800, 600) as name:
        yield name


def xdotool(display: str, *args: str) -> str:
    return subprocess.run(
        ["xdotool", *args],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=scaled(10),
    ).stdout.strip()


SELECTION = (
    "import tkinter\n"
    "root = tkinter.Tk()\n"
    "try:\n"
    "    print(root.selection_get(selection='PRIMARY'), end='')\n"
    "except tkinter.TclError:\n"
    "    pass\n"
)


def primary(display: str) -> str:
    """The X PRIMARY selection now: what the user selected last, anywhere.

    Read by a process of its own: a Tk in the test process would outlive this X server.
    """
    return subprocess.run(
        [sys.executable, "-c", SELECTION],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=scaled(20),
    ).stdout


def fake_opener(folder: Path, record: Path) -> Path:
    """A `bin` folder whose only program is an xdg-open that writes down what it opens."""
    folder.mkdir()
    opener = folder / "xdg-open"
    opener.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{record}"\n')
    opener.chmod(opener.stat().st_mode | stat.S_IXUSR)
    return folder


def about_window(display: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*sysboy_command(), "about", "--window"],
        env={**os.environ, "DISPLAY": display, "PATH": str(path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def focused_window(display: str) -> str:
    window = wait_for(
        lambda: xdotool(display, "search", "--name", "^About Sysboy$"),
        20,
        "the About window never opened",
    )
    xdotool(display, "windowfocus", "--sync", window.split()[0])
    return str(window.split()[0])


def test_about_window_paths_are_selectable_and_buttons_open_them(
    display: str, tmp_path: Path
) -> None:
    paths = Paths.default()
    record = tmp_path / "opened.txt"
    proc = about_window(display, fake_opener(tmp_path / "bin", record))
    try:
        focused_window(display)
        # the settings path has the focus: select it all, as a user would to copy it
        xdotool(display, "key", "ctrl+slash")
        wait_for(lambda: primary(display) == str(paths.settings_file), 10, "not selectable")
        # Tab moves on: its Open folder button, then the logs field (selected on entry)
        xdotool(display, "key", "--delay", "100", "Tab", "Tab")
        wait_for(lambda: primary(display) == str(paths.log_dir), 10, "logs not selectable")
        xdotool(display, "key", "--delay", "100", "Tab", "space")  # logs' Open folder
        wait_for(record.exists, 10, "the log folder was not opened")
        xdotool(display, "key", "--delay", "100", "shift+Tab", "shift+Tab", "space")
        wait_for(lambda: len(record.read_text().splitlines()) == 2, 10, "settings not opened")
        assert record.read_text().splitlines() == [str(paths.log_dir), str(paths.config_dir)]
        xdotool(display, "key", "Escape")
        out, err = proc.communicate(timeout=scaled(20))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"Logs: {paths.log_dir}" in out


def test_without_a_file_manager_the_window_says_where_the_folder_is(
    display: str, tmp_path: Path
) -> None:
    paths = Paths.default()
    empty = tmp_path / "bin"
    empty.mkdir()  # no xdg-open at all
    proc = about_window(display, empty)
    try:
        focused_window(display)
        xdotool(display, "key", "--delay", "100", "Tab", "Tab", "Tab", "space")
        assert proc.stdout is not None
        said = proc.stdout.readline()
        while said.startswith(("Sysboy ", "Running", "Settings:", "Logs:", "Not available")):
            said = proc.stdout.readline()
        assert said.strip() == f"No file manager could be started: the folder is {paths.log_dir}."
        xdotool(display, "key", "Escape")
        proc.wait(scaled(20))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


@pytest.mark.skipif(sys.platform == "win32", reason="Windows opens folders without xdg-open")
def test_open_log_folder_from_the_tray_without_xdg_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sysboy_tray.commands import tray
    from sysboy_tray.tray import launch

    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(launch, "run_subcommand", lambda *args: started.append(args))
    notices: list[str] = []
    paths = Paths.default()
    tray.open_log_folder(paths, notices.append)
    assert notices == [f"No file manager could be started; the logs are in {paths.log_dir}"]
    assert started == [("about", "--window")]  # the path to copy, where a user sees it
