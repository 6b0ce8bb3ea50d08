"""A client of the local control API (`/control`), for the CLI and the calibration window."""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import psutil
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from sysboy_tray import CONTROL_PATH
from sysboy_tray.config import Paths
from sysboy_tray.control import NONCE_BYTES, NONCE_HEADER, is_nonce, proof, read_token
from sysboy_tray.errors import ControlError, NotRunning
from sysboy_tray.protocol import Point

NOT_RUNNING = "Sysboy is not running; start it with `sysboy` (tray icon) or `sysboy serve`"
# a calibration waits for the device's ack (5 s) on top of the app's own hand-over
CALIBRATE_TIMEOUT_S = 10.0
# running.json records when the app's process started; another process that got the
# same id later started later than this
STARTED_SLACK_S = 1.0


@dataclass(frozen=True)
class NeedleStatus:
    """One needle of a connected meter: its metric and the calibration it holds."""

    metric: str
    calibration: tuple[Point, ...]


@dataclass(frozen=True)
class DeviceStatus:
    """A connected meter, as `sysboy status` shows it (`metric`, `calibration`: needle 1's)."""

    id: str
    name: str
    address: str
    board: str
    fw: str
    metric: str
    rssi: int | None
    calibration: tuple[Point, ...]
    needles: tuple[NeedleStatus, ...] = ()
    button_needle: int = 1
    update_available: bool = False  # the app carries a newer firmware
    update: str = ""  # how its firmware update goes, in a few words


@dataclass(frozen=True)
class MetricStatus:
    """A metric: whether it can be read, and its latest value."""

    id: str
    label: str
    unit: str
    pushed: bool
    live: bool
    available: bool
    reason: str | None
    value: float | None
    detail: str | None


@dataclass(frozen=True)
class AppStatus:
    """What the running app does: where it listens, its devices and metrics."""

    version: str
    port: int
    addresses: tuple[str, ...]
    advertised: tuple[str, ...]
    metric: str
    interval_s: float
    devices: tuple[DeviceStatus, ...]
    metrics: tuple[MetricStatus, ...]
    # what the firewall does to meters, in a sentence (None: not known here)
    firewall: str | None = None
    firewall_blocked: bool = False
    metric_note: str = ""  # how the app chose the metric on its first run
    firmware: str = ""  # the firmware version the app carries for updates
    updates: dict[str, UpdateProgress] = field(default_factory=dict)  # by device id
    new_meters: tuple[NewMeterStatus, ...] = ()  # unpaired meters waiting for their button


@dataclass(frozen=True)
class NewMeterStatus:
    """An unpaired meter waiting for its button: a press within `seconds_left` pairs it."""

    id: str
    name: str
    address: str
    seconds_left: int


@dataclass(frozen=True)
class UpdateProgress:
    """One meter's firmware update: its state, bytes sent of the total, and in words."""

    version: str
    state: str  # starting, preparing, sending, waiting, restarting, done, failed, rolled back
    done: int
    total: int
    text: str

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "rolled back")


@dataclass(frozen=True)
class Pushed:
    """Where a pushed value shows now: on the tray (global) and on which linked devices."""

    name: str
    ttl_s: float
    label: str
    on_tray: bool
    shown_on: tuple[str, ...]


@dataclass(frozen=True)
class DeviceCalibration:
    """The calibration one needle of a device holds now, and the copy kept on the PC."""

    device: str
    name: str
    address: str
    points: tuple[Point, ...]
    saved: tuple[Point, ...] | None
    needle: int = 1
    needles: int = 1  # how many the device has


def _points(raw: Any) -> tuple[Point, ...]:
    return tuple((float(p[0]), float(p[1])) for p in raw)


def _status(reply: dict[str, Any]) -> AppStatus:
    return AppStatus(
        version=reply["version"],
        port=reply["port"],
        addresses=tuple(reply["addresses"]),
        advertised=tuple(reply["advertised"]),
        metric=reply["metric"],
        metric_note=str(reply.get("metric_note") or ""),
        interval_s=reply["interval_s"],
        devices=tuple(
            DeviceStatus(
                d["id"],
                d["name"],
                d["address"],
                d["board"],
                d["fw"],
                d["metric"],
                d["rssi"],
                _points(d["calibration"]),
                tuple(
                    NeedleStatus(n["metric"], _points(n["calibration"]))
                    for n in d.get("needles", ())
                ),
                d.get("button_needle", 1),
                bool(d.get("update_available", False)),
                str(d.get("update") or ""),
            )
            for d in reply["devices"]
        ),
        metrics=tuple(
            MetricStatus(
                m["id"],
                m["label"],
                m["unit"],
                m["pushed"],
                m["live"],
                m["available"],
                m["reason"],
                m["value"],
                m["detail"],
            )
            for m in reply["metrics"]
        ),
        firewall=(reply.get("firewall") or {}).get("summary"),
        firewall_blocked=bool((reply.get("firewall") or {}).get("blocked")),
        firmware=str(reply.get("firmware") or ""),
        updates={
            str(device_id): UpdateProgress(
                str(u["version"]), str(u["state"]), int(u["done"]), int(u["total"]), str(u["text"])
            )
            for device_id, u in (reply.get("updates") or {}).items()
        },
        new_meters=tuple(
            NewMeterStatus(str(m["id"]), str(m["name"]), str(m["address"]), int(m["seconds_left"]))
            for m in reply.get("new_meters") or ()
        ),
    )


def running_port(paths: Paths) -> int:
    """The port in running.json, once its process is checked to be this user's app.

    Raises:
        NotRunning: no such file, or the process it names ended or is someone else's.
    """
    try:
        state = json.loads(paths.state_file.read_text("utf-8"))
        port = int(state["port"])
        pid = int(state["pid"])
        started = float(state["started"])
    except (OSError, ValueError, KeyError, TypeError):
        raise NotRunning(NOT_RUNNING) from None
    try:
        process = psutil.Process(pid)
        began = process.create_time()
        mine = _is_mine(process)
    except (psutil.Error, OSError):
        raise NotRunning(f"{NOT_RUNNING} (running.json is left from a run that ended)") from None
    if abs(began - started) > STARTED_SLACK_S:
        raise NotRunning(f"{NOT_RUNNING} (running.json is left from a run that ended)")
    if not mine:
        raise NotRunning(
            f"{NOT_RUNNING} (running.json names process {pid}, which is not yours; "
            "nothing was sent to it)"
        )
    return port


def _is_mine(process: psutil.Process) -> bool:
    """The process runs as this user (its real user id; the account name on Windows)."""
    uids = getattr(process, "uids", None)
    if uids is not None and hasattr(os, "getuid"):
        return bool(uids().real == os.getuid())
    return bool(process.username() == psutil.Process().username())


class ControlClient:
    """One connection to the running app; requests are answered in order, thread-safely."""

    def __init__(self, port: int, token: str, *, host: str = "127.0.0.1", timeout: float = 5.0):
        """Connect to the app's control API; the app proves it knows the token first.

        Raises:
            NotRunning: nothing listens there.
            ControlError: the app refused the connection, or what listens there could
                not prove that it is this user's Sysboy (it was sent nothing).
        """
        self.timeout = timeout
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # websockets 17 wants its connection held as a context; the stack holds it for us
        self._stack = contextlib.ExitStack()
        ours = secrets.token_hex(NONCE_BYTES)
        try:
            self._ws: ClientConnection = self._stack.enter_context(
                connect(
                    f"ws://{host}:{port}{CONTROL_PATH}",
                    additional_headers={NONCE_HEADER: ours},
                    open_timeout=timeout,
                    close_timeout=1,
                    compression=None,
                )
            )
        except InvalidStatus as exc:
            body = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
            raise ControlError(f"the running Sysboy refused the connection: {body!r}") from None
        except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed):
            # ConnectionClosed: the app closed the connection (e.g. every slot of this
            # address taken) before the client had even sent its request
            raise NotRunning(NOT_RUNNING) from None
        try:
            self._prove(token, ours, port)
        except BaseException:
            self._stack.close()
            raise

    def _prove(self, token: str, ours: str, port: int) -> None:
        """Check the app's proof, then send ours; nothing else goes out before that."""
        stranger = ControlError(
            f"what listens on port {port} could not prove that it is your Sysboy; "
            "nothing was sent to it (is running.json left from a crash?)"
        )
        try:
            first = json.loads(self._ws.recv(self.timeout))
        except (TimeoutError, ConnectionClosed, ValueError, TypeError, RecursionError):
            raise stranger from None
        theirs = first.get("nonce") if isinstance(first, dict) else None
        given = first.get("proof") if isinstance(first, dict) else None
        if not is_nonce(theirs) or not isinstance(given, str):
            raise stranger
        assert isinstance(theirs, str)
        expected = proof(token, "app", ours, theirs)
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii")):
            raise stranger
        try:
            self._ws.send(json.dumps({"op": "auth", "proof": proof(token, "client", theirs, ours)}))
            reply = json.loads(self._ws.recv(self.timeout))
        except (TimeoutError, ConnectionClosed, ValueError):
            raise ControlError("the running Sysboy did not accept this client's proof") from None
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            raise ControlError("the running Sysboy did not accept this client's proof")

    @classmethod
    def find(cls, paths: Paths | None = None, timeout: float = 5.0) -> ControlClient:
        """Connect to the app running for this user (its port and token are in its files).

        running.json must name a live process of this user, started when the file says;
        otherwise nothing is sent to the port it names.

        Raises:
            NotRunning: no app is running.
            ControlError: the app refused the connection, or a stranger holds its port.
        """
        paths = paths or Paths.default()
        port = running_port(paths)
        try:
            token = read_token(paths.token_file)
        except ControlError as exc:
            raise NotRunning(f"{NOT_RUNNING} ({exc})") from None
        try:
            return cls(port, token, timeout=timeout)
        except NotRunning:
            # its process is alive: starting, stopping, or every slot of this address taken
            raise ControlError(
                f"Sysboy is running but did not take the connection on port {port} "
                "(it may be starting or quitting, or too many connections from this PC "
                "are open); try again in a moment"
            ) from None

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, op: str, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Send one request and return the app's reply.

        Raises:
            ControlError: the app refused the request (the text says why), did not answer
                in time, or closed the connection.
        """
        wait = self.timeout if timeout is None else timeout
        with self._lock:
            number = next(self._ids)
            try:
                self._ws.send(json.dumps({"op": op, "id": number, **args}))
                while True:
                    reply = json.loads(self._ws.recv(wait))
                    # a reply to an earlier request that timed out is late, not ours
                    if isinstance(reply, dict) and reply.get("id") == number:
                        break
            except TimeoutError:
                raise ControlError("Sysboy did not answer in time") from None
            except ConnectionClosed:
                raise NotRunning("Sysboy closed the connection; it may have quit") from None
        if not reply.get("ok"):
            raise ControlError(str(reply.get("error") or "Sysboy refused the request"))
        return reply

    # -- the ops ------------------------------------------------------------------------

    def status(self) -> AppStatus:
        """Devices, metrics, and where the app listens."""
        return _status(self.request("status"))

    def set_metric(self, metric: str, device: str | None = None, needle: int | None = None) -> None:
        """Show `metric` on every device without its own choice, or on one device's needle."""
        self.request("metric", metric=metric, device=device, needle=needle)

    def gpu(self, index: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """The GPUs and the one read now; with `index`, read that GPU from now on first."""
        reply = self.request("gpu", index=index)
        return list(reply["gpus"]), reply["gpu"]

    def rename(self, device: str | None, name: str) -> tuple[str, str]:
        """Name a device on this PC ("" gives it back its own name); its id and shown name."""
        reply = self.request("rename", device=device, name=name)
        return str(reply["device"]), str(reply["name"])

    def needle(
        self, value: float | None, device: str | None = None, needle: int | None = None
    ) -> str:
        """Put a needle (all: None) at a raw output fraction 0..1 (None: back to the metric)."""
        return str(self.request("needle", value=value, device=device, needle=needle)["device"])

    def update_firmware(self, device: str | None = None) -> tuple[str, str]:
        """Start a meter's firmware update; (its id, the version it is updated to)."""
        reply = self.request("update", device=device)
        return str(reply["device"]), str(reply["version"])

    def sweep(self, device: str | None = None, needle: int | None = None) -> str:
        """Move a needle (all: None) across the scale and back."""
        return str(self.request("sweep", device=device, needle=needle)["device"])

    def identify(self, device: str | None = None, needle: int | None = None) -> str:
        """Wiggle a needle (all: None) so the user sees which meter it is."""
        return str(self.request("identify", device=device, needle=needle)["device"])

    def calibrate(
        self, points: tuple[Point, ...], device: str | None = None, needle: int = 1
    ) -> str:
        """Send one needle's calibration and wait for the device's ack; the app keeps a copy."""
        reply = self.request(
            "calibrate",
            timeout=CALIBRATE_TIMEOUT_S,
            device=device,
            needle=needle,
            points=[list(p) for p in points],
        )
        return str(reply["device"])

    def calibration(self, device: str | None = None, needle: int = 1) -> DeviceCalibration:
        """The calibration one needle of a connected device holds now."""
        reply = self.request("calibration", device=device, needle=needle)
        saved = reply.get("saved")
        return DeviceCalibration(
            reply["device"],
            reply["name"],
            reply["address"],
            _points(reply["points"]),
            _points(saved) if saved is not None else None,
            int(reply.get("needle", 1)),
            int(reply.get("needles", 1)),
        )

    def push(self, name: str, value: float, unit: str = "", label: str = "") -> float:
        """Show a script's own value; return how long it stays before it expires (s)."""
        return self.push_value(name, value, unit, label).ttl_s

    def push_value(self, name: str, value: float, unit: str = "", label: str = "") -> Pushed:
        """Show a script's own value; where it shows now, and for how long."""
        reply = self.request("push", name=name, value=value, unit=unit, label=label)
        return Pushed(
            str(reply.get("name", name)),
            float(reply["ttl_s"]),
            str(reply.get("label") or name),
            bool(reply.get("global", False)),
            tuple(str(d) for d in reply.get("shown_on", ())),
        )
