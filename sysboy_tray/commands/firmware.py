"""`sysboy firmware build|deploy|update`: compile the device firmware, copy it to a board by
USB, or update a linked meter over Wi-Fi (through the running app)."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import Any

from sysboy_tray import firmware_tool
from sysboy_tray.commands._client import EPILOG, EXIT_REFUSED, with_client
from sysboy_tray.config import Paths, SettingsStore
from sysboy_tray.control_client import ControlClient, UpdateProgress
from sysboy_tray.firmware_tool import DEFAULT_MPY_VERSION, FirmwareError, WifiSettings
from sysboy_tray.pairing import pair_by_cable
from sysboy_tray.terminal import printable

DEFAULT_OUT = "sysboy-firmware"
POLL_S = 0.5
BAR_WIDTH = 30


def _say(line: str) -> None:
    print(line, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    mpy_help = (
        f"bytecode version of the board's MicroPython (default {DEFAULT_MPY_VERSION} = "
        "MicroPython 1.23 and later; 6.2 = 1.22, 6.1 = 1.20-1.21, 6 = 1.19)"
    )
    build = actions.add_parser(
        "build",
        help="compile the firmware to .mpy files in a bundle folder",
        description="Compile the firmware to .mpy files (main.py and boot.py stay source) "
        "and write them with a manifest into a bundle folder.",
    )
    build.add_argument(
        "--out",
        type=Path,
        default=Path(DEFAULT_OUT),
        help=f"bundle folder (default ./{DEFAULT_OUT})",
    )
    build.add_argument("--mpy-version", default=DEFAULT_MPY_VERSION, metavar="V", help=mpy_help)
    deploy = actions.add_parser(
        "deploy",
        help="copy the firmware to a board attached by USB, then reset it",
        description="Copy the firmware to a MicroPython board attached by USB (with mpremote), "
        "then reset it. Builds a fresh bundle unless --bundle names one. The meter is set up "
        "for this PC and gets a new random password for its setup network; with --wifi it "
        "also gets your Wi-Fi network, so it never needs its setup page.",
    )
    deploy.add_argument("--port", help="the board's serial port (default: the one board attached)")
    deploy.add_argument(
        "--wifi",
        metavar="SSID",
        help="the Wi-Fi network the meter joins; its password is asked for, never taken here",
    )
    deploy.add_argument("--bundle", type=Path, help="a bundle made by `sysboy firmware build`")
    deploy.add_argument("--mpy-version", default=DEFAULT_MPY_VERSION, metavar="V", help=mpy_help)
    update = actions.add_parser(
        "update",
        help="update a linked meter's firmware over Wi-Fi",
        description="Send the firmware this app carries to a linked meter over Wi-Fi (through "
        "the running app), with a progress bar. The meter keeps its previous version and goes "
        "back to it by itself if the new one does not start or link. An interrupted update "
        "resumes where it stopped when started again.",
        epilog=EPILOG,
    )
    update.add_argument("device", nargs="?", help="the meter's id (default: the only one linked)")


def _build(args: argparse.Namespace) -> int:
    manifest = firmware_tool.build(args.out, args.mpy_version, progress=_say)
    print(
        f"bundle {args.out}: {len(manifest['files'])} files, mpy v{manifest['mpy_version']}, "
        f"firmware {manifest['firmware_version']}"
    )
    print(f"copy it to a board with: sysboy firmware deploy --bundle {args.out}")
    return 0


def _ask_wifi(ssid: str) -> WifiSettings:
    """The Wi-Fi password, typed where nobody sees it (never argv, never the log)."""
    try:
        password = getpass.getpass(f"Password for the Wi-Fi network {ssid!r} (empty if open): ")
    except EOFError:
        raise FirmwareError("No password was typed: run the command again in a terminal.") from None
    return firmware_tool.check_wifi(ssid, password)


def _deploy(args: argparse.Namespace) -> int:
    # Look for the board first: without one, say so before any work is done.
    port = firmware_tool.choose_port(args.port)
    print(f"board on {port}", flush=True)
    wifi = _ask_wifi(args.wifi) if args.wifi is not None else None
    pc_id = SettingsStore(Paths.default().settings_file).settings.install_id
    written: dict[str, Any] = {}

    def settings_for(device_id: str) -> dict[str, Any]:
        """What the meter with `device_id` gets in its config: all of it is built here."""
        written.update(firmware_tool.device_settings(pc_id, wifi))
        # the pairing: a key for this meter in this PC's keys file, and in the meter's config
        written["key"], written["pc"] = pair_by_cable(device_id)
        return written

    if args.bundle is not None:
        firmware_tool.deploy(args.bundle, port, progress=_say, settings=settings_for)
    else:
        with firmware_tool.temporary_bundle(args.mpy_version, progress=_say) as bundle:
            firmware_tool.deploy(bundle, port, progress=_say, settings=settings_for)
    print(f"firmware copied to {port} and the board reset into it")
    if wifi is not None:
        print(f"the meter joins {wifi.ssid!r} and finds this PC by itself")
    else:
        print("join its Sysboy-XXXX Wi-Fi to choose its network (or deploy again with --wifi)")
    print(f"its setup network's password, should you ever need it: {written['ap_password']}")
    return 0


def progress_line(progress: UpdateProgress) -> str:
    """A progress bar and the update's state in words."""
    share = progress.done / progress.total if progress.total else 0.0
    filled = int(BAR_WIDTH * share)
    return f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {printable(progress.text)}"


def _update(args: argparse.Namespace) -> int:
    def run(client: ControlClient) -> int:
        device, version = client.update_firmware(args.device)
        print(f"updating {printable(device)} to firmware {printable(version)}", flush=True)
        live = sys.stdout.isatty()
        shown = ""
        while True:
            progress = client.status().updates.get(device)
            if progress is not None:
                line = progress_line(progress)
                if line != shown:
                    # a terminal redraws one line; a pipe or a log gets each change once
                    print(
                        ("\r" + line.ljust(len(shown))) if live else line,
                        end="" if live else "\n",
                        flush=True,
                    )
                    shown = line
                if progress.finished:
                    if live:
                        print()
                    return 0 if progress.state == "done" else EXIT_REFUSED
            time.sleep(POLL_S)

    return with_client(run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "build":
            return _build(args)
        if args.action == "update":
            return _update(args)
        return _deploy(args)
    except FirmwareError as exc:
        print(f"sysboy: {exc}", file=sys.stderr)
        return 1
