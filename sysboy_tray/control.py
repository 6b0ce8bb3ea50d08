"""The local control API at `/control`: the CLI and the calibration window drive the app here.

Only programs on this PC that can read the token file may use it, and the token never
crosses the socket: the peer must be a loopback address without an `Origin` (browsers
are refused) and send a random `Sysboy-Nonce` header. The app's first frame proves it
knows the token (an HMAC over both nonces), so a client that reached a stranger holding
the port learns that before it sends anything; the client's first frame proves the
same, or the connection is closed. The token is made anew at each start.

Each request is one JSON object with an `op`; each gets exactly one reply, in order:
`{"ok": true, ...}` or `{"ok": false, "error": "<sentence>"}`. An optional `id` is
echoed back. Ops: status, metric, needle, sweep, identify, calibrate, calibration, push.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import http
import ipaddress
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sysboy_tray import PROTOCOL_VERSION, __version__, protocol
from sysboy_tray.advertise import lan_addresses
from sysboy_tray.config import MAX_NEEDLES, Paths, atomic_write
from sysboy_tray.errors import ConfigError, ControlError, ProtocolError
from sysboy_tray.firewall import FirewallVerdict

if TYPE_CHECKING:
    from sysboy_tray.app import App

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
TOKEN_MODE = 0o600
NONCE_BYTES = 32
NONCE_HEADER = "Sysboy-Nonce"
# a client proves itself in its first frame, at once; a peer that says nothing is let go
AUTH_TIMEOUT_S = 5.0
CLOSE_POLICY = 1008
Reply = dict[str, Any]
T = TypeVar("T")


# -- the token --------------------------------------------------------------------------


def _valid_token(text: str) -> bool:
    return len(text) >= 2 * TOKEN_BYTES and all(c in "0123456789abcdef" for c in text)


def read_token(path: Path) -> str:
    """The control token in `path`.

    Raises:
        ControlError: the file is missing, unreadable or does not hold a token.
    """
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        raise ControlError(f"there is no control token at {path}; is Sysboy running?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ControlError(f"cannot read the control token at {path}: {exc}") from None
    if not _valid_token(text):
        raise ControlError(f"the control token at {path} is damaged; restart Sysboy")
    return text


def new_token(path: Path) -> str:
    """Make a new random token in `path` (mode 0600) and return it; done at each start.

    Raises:
        OSError: the file cannot be written.
    """
    token = secrets.token_hex(TOKEN_BYTES)
    atomic_write(path, token.encode("ascii"), mode=TOKEN_MODE)
    return token


def proof(token: str, side: str, first: str, second: str) -> str:
    """HMAC-SHA256 of the two nonces under the token, for `side` ("app" or "client")."""
    message = f"sysboy control {side}\n{first}\n{second}".encode("ascii")
    return hmac.new(token.encode("ascii"), message, hashlib.sha256).hexdigest()


def is_nonce(text: object) -> bool:
    """True for a nonce as the handshake carries it: 64 lowercase hex digits."""
    return (
        isinstance(text, str)
        and len(text) == 2 * NONCE_BYTES
        and all(c in "0123456789abcdef" for c in text)
    )


def control_factory(paths: Paths) -> Callable[[App], ControlAPI]:
    """Make this start's token now (not on the event loop); return what `App` calls."""
    token = new_token(paths.token_file)
    return lambda app: ControlAPI(app, token)


# -- checking requests -------------------------------------------------------------------


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    """Call a blocking `App` method from the loop without blocking the loop."""

    def run() -> T:
        try:
            return func(*args)
        except concurrent.futures.CancelledError:
            # asyncio would take this for the cancellation of our own task
            raise ControlError("the device went away before it answered") from None

    return await asyncio.to_thread(run)


def _is_loopback(peer: Any) -> bool:
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except (TypeError, IndexError, ValueError):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _device(request: dict[str, Any]) -> str | None:
    device = request.get("device")
    if device is not None and (not isinstance(device, str) or not device):
        raise ControlError("'device' must be a device id")
    return device


def _needle(request: dict[str, Any]) -> int | None:
    """The optional `needle` (1 to 4) a request is for."""
    needle = request.get("needle")
    if needle is not None and (
        isinstance(needle, bool) or not isinstance(needle, int) or not 1 <= needle <= MAX_NEEDLES
    ):
        raise ControlError(f"'needle' must be a needle number, 1 to {MAX_NEEDLES}")
    return needle


def _text(request: dict[str, Any], key: str, default: str = "") -> str:
    value = request.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ControlError(f"'{key}' must be a string")
    return value


def _number(request: dict[str, Any], key: str) -> float:
    value = request.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ControlError(f"'{key}' must be a finite number")
    return float(value)


def _firewall(verdict: FirewallVerdict | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {"blocked": verdict.blocked, "profile": verdict.profile, "summary": verdict.summary}


SHOW_NOTICE = "Sysboy is already running: this is its icon. Click it for the menu."


# -- the endpoint -----------------------------------------------------------------------


class ControlAPI:
    """The `/control` endpoint of one running app (its methods run on the loop thread)."""

    def __init__(self, app: App, token: str) -> None:
        self.app = app
        self._token = token
        self._ops: dict[str, Callable[[dict[str, Any], set[str]], Awaitable[Reply]]] = {
            "status": self._status,
            "metric": self._metric,
            "needle": self._needle,
            "sweep": self._sweep,
            "identify": self._identify,
            "calibrate": self._calibrate,
            "calibration": self._calibration,
            "push": self._push,
            "show": self._show,
            "update": self._update,
            "rename": self._rename,
            "gpu": self._gpu,
        }

    def admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Let through loopback peers without an Origin that bring a nonce; 403 others."""
        peer = connection.remote_address
        if not _is_loopback(peer):
            # debug only: a LAN peer knocking again and again must not fill the log
            log.debug("control connection from %r refused: not this PC", peer)
            return connection.respond(
                http.HTTPStatus.FORBIDDEN, "the control API answers only programs on this PC\n"
            )
        if "Origin" in request.headers:
            return connection.respond(
                http.HTTPStatus.FORBIDDEN, "web pages may not use the control API\n"
            )
        if not is_nonce(request.headers.get(NONCE_HEADER)):
            return connection.respond(
                http.HTTPStatus.FORBIDDEN,
                f"the control API needs a {NONCE_HEADER} header (see docs/control.md)\n",
            )
        return None

    async def serve(self, ws: ServerConnection) -> None:
        """Prove the token both ways, then answer requests one by one.

        Raw needle mode ends on the devices this client left in it.
        """
        raw: set[str] = set()
        try:
            if not await self._authenticate(ws):
                return
            async for data in ws:
                reply = await self.answer(data, raw)
                await ws.send(json.dumps(reply, allow_nan=False))
        except ConnectionClosed:
            pass
        finally:
            # on the loop thread already: hand the hub the message directly, no round trip
            for device_id in raw:
                session = self.app.hub.sessions.get(device_id)
                if session is not None:
                    session.send(protocol.Needle(None))

    async def _authenticate(self, ws: ServerConnection) -> bool:
        """Our proof first, then the client's: True when the client knows the token."""
        assert ws.request is not None  # admitted: the nonce was checked then
        theirs = ws.request.headers[NONCE_HEADER]
        ours = secrets.token_hex(NONCE_BYTES)
        await ws.send(json.dumps({"nonce": ours, "proof": proof(self._token, "app", theirs, ours)}))
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), AUTH_TIMEOUT_S))
        except TimeoutError:
            await ws.close(CLOSE_POLICY, "no proof in time")
            return False
        except (ValueError, TypeError, RecursionError):
            first = None
        expected = proof(self._token, "client", ours, theirs).encode("ascii")
        given = first.get("proof") if isinstance(first, dict) else None
        if (
            isinstance(first, dict)
            and first.get("op") == "auth"
            and isinstance(given, str)
            and hmac.compare_digest(given.encode("utf-8", "replace"), expected)
        ):
            await ws.send(json.dumps({"ok": True}))
            return True
        log.debug("control client refused: wrong or missing proof")
        await ws.send(
            json.dumps({"ok": False, "error": "wrong proof: the control token does not match"})
        )
        await ws.close(CLOSE_POLICY, "wrong proof")
        return False

    async def answer(self, data: str | bytes, raw: set[str]) -> Reply:
        """The reply to one request frame; never raises."""
        request: Any = None
        try:
            if isinstance(data, bytes):
                raise ControlError("requests are JSON text, not binary frames")
            try:
                request = json.loads(data)
            except ValueError:
                raise ControlError("the request is not valid JSON") from None
            if not isinstance(request, dict):
                raise ControlError("the request must be a JSON object")
            op = request.get("op")
            handler = self._ops.get(op) if isinstance(op, str) else None
            if handler is None:
                known = ", ".join(self._ops)
                raise ControlError(f"unknown op {op!r}; known ops: {known}")
            reply = await handler(request, raw)
            reply["ok"] = True
        except (ControlError, ProtocolError, ConfigError) as exc:
            reply = {"ok": False, "error": str(exc)}
        except TimeoutError:
            reply = {"ok": False, "error": "the device did not answer in time"}
        except Exception as exc:  # a bug must cost one reply, not the connection
            log.exception("control request failed")
            reply = {"ok": False, "error": f"Sysboy failed to do that: {exc}"}
        if isinstance(request, dict) and "id" in request:
            reply["id"] = request["id"]
        return reply

    # -- ops (each gets the request and the set of devices in raw needle mode) ------------

    async def _status(self, request: dict[str, Any], raw: set[str]) -> Reply:
        app = self.app
        devices = await _in_thread(app.devices)
        addresses = await _in_thread(lan_addresses)
        hub = app.hub
        live = hub.wanted()  # only these are sampled now; others show their first read
        metrics = []
        for info in hub.metric_infos():
            reading = hub.readings.get(info.id)
            metrics.append(
                {
                    "id": info.id,
                    "label": info.label,
                    "unit": info.unit,
                    "pushed": info.id in hub.custom,
                    "live": info.id in live or info.id in hub.custom,
                    "available": reading is not None and reading.available,
                    "reason": reading.reason if reading is not None else "not read yet",
                    "value": reading.percent if reading is not None else None,
                    "raw": reading.raw if reading is not None else None,
                    "detail": reading.detail if reading is not None else None,
                }
            )
        return {
            "version": __version__,
            "proto": PROTOCOL_VERSION,
            "port": app.port,
            "addresses": addresses,
            "advertised": list(app.advertised),
            "firewall": _firewall(app.firewall()),
            "metric": hub.global_metric,
            "metric_note": app.metric_note,
            "interval_s": app.sampler.interval,
            "devices": [
                {
                    "id": d.id,
                    "name": d.name,
                    "address": d.address,
                    "board": d.board,
                    "fw": d.fw,
                    "metric": d.metric,
                    "rssi": d.rssi,
                    "calibration": [list(p) for p in d.calibration],
                    "needles": [
                        {"metric": n.metric, "calibration": [list(p) for p in n.calibration]}
                        for n in d.needles
                    ],
                    "button_needle": d.button_needle,
                    "update_available": d.update_available,
                    "update": d.update,
                }
                for d in devices
            ],
            "new_meters": [
                {"id": m.id, "name": m.name, "address": m.address, "seconds_left": m.seconds_left()}
                for m in await _in_thread(app.new_meters)
            ],
            "firmware": app.updater.version,
            "updates": {
                device_id: {
                    "version": u.version,
                    "state": u.state,
                    "done": u.done,
                    "total": u.total,
                    "detail": u.detail,
                    "text": u.text(),
                }
                for device_id, u in (await _in_thread(app.updates)).items()
            },
            "metrics": metrics,
        }

    async def _metric(self, request: dict[str, Any], raw: set[str]) -> Reply:
        metric = request.get("metric")
        if not isinstance(metric, str):
            raise ControlError("'metric' must be a metric name")
        metric = metric.lower()  # VRAM, Vram and vram are one metric
        device = _device(request)
        needle = _needle(request)
        if device is not None:  # a typo must not become a device in the settings
            self.app.hub.check_device(device)
        await _in_thread(self.app.set_metric, metric, device, needle)
        return {"metric": metric, "device": device, "needle": needle}

    async def _needle(self, request: dict[str, Any], raw: set[str]) -> Reply:
        value = request.get("value")
        if value is not None:
            value = _number(request, "value")
            if not 0.0 <= value <= 1.0:
                raise ControlError("'value' must be between 0 and 1, or null")
        session = self.app.hub.session(_device(request))
        device_id = session.device_id
        await _in_thread(
            self.app.send, device_id, protocol.Needle(value, session.needle_key(_needle(request)))
        )
        if value is None:
            raw.discard(device_id)
        else:
            raw.add(device_id)
        return {"device": device_id}

    async def _sweep(self, request: dict[str, Any], raw: set[str]) -> Reply:
        session = self.app.hub.session(_device(request))
        needle = session.needle_key(_needle(request))
        await _in_thread(self.app.send, session.device_id, protocol.Sweep(needle))
        return {"device": session.device_id}

    async def _identify(self, request: dict[str, Any], raw: set[str]) -> Reply:
        session = self.app.hub.session(_device(request))
        needle = session.needle_key(_needle(request))
        await _in_thread(self.app.send, session.device_id, protocol.Identify(needle))
        return {"device": session.device_id}

    async def _calibrate(self, request: dict[str, Any], raw: set[str]) -> Reply:
        points = protocol.check_points(request.get("points"))
        device = _device(request)
        needle = _needle(request) or 1
        try:
            device_id = await _in_thread(self.app.calibrate, device, points, needle)
        except TimeoutError:
            raise ControlError(
                "the device did not confirm the calibration; it may be on old firmware"
                " or its link dropped"
            ) from None
        return {"device": device_id, "needle": needle, "points": [list(p) for p in points]}

    async def _calibration(self, request: dict[str, Any], raw: set[str]) -> Reply:
        session = self.app.hub.session(_device(request))
        device_id = session.device_id
        number = _needle(request) or 1
        session.needle_key(number)  # refuses a needle the meter does not have
        views = await _in_thread(self.app.devices)
        view = next((v for v in views if v.id == device_id), None)
        if view is None:
            raise ControlError(f"device '{device_id}' is not connected")
        kept = self.app.store.settings.devices.get(device_id)
        saved = kept.needle(number).calibration if kept is not None else None
        return {
            "device": device_id,
            "name": view.name,
            "address": view.address,
            "needle": number,
            "needles": len(view.needles),
            "points": [list(p) for p in view.needles[number - 1].calibration],
            "saved": [list(p) for p in saved] if saved is not None else None,
        }

    async def _gpu(self, request: dict[str, Any], raw: set[str]) -> Reply:
        index = request.get("index")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int):
                raise ControlError("'index' must be a GPU's number (see sysboy gpu)")
            await _in_thread(self.app.set_gpu, index)
        found, shown = await _in_thread(self.app.gpus)
        return {
            "gpus": [
                {"index": g.index, "name": g.name, "total_bytes": g.total_bytes, "vendor": g.vendor}
                for g in found
            ],
            "gpu": shown.index if shown is not None else None,
        }

    async def _rename(self, request: dict[str, Any], raw: set[str]) -> Reply:
        device = _device(request) or self.app.hub.session(None).device_id
        name = _text(request, "name")
        device_id, shown = await _in_thread(self.app.rename, device, name)
        return {"device": device_id, "name": shown}

    async def _update(self, request: dict[str, Any], raw: set[str]) -> Reply:
        device_id = await _in_thread(self.app.update_firmware, _device(request))
        return {"device": device_id, "version": self.app.updater.version}

    async def _show(self, request: dict[str, Any], raw: set[str]) -> Reply:
        # a second start of the app: the running one points at its icon
        self.app.notice(SHOW_NOTICE)
        return {}

    async def _push(self, request: dict[str, Any], raw: set[str]) -> Reply:
        name = request.get("name")
        if not isinstance(name, str):
            raise ControlError("'name' must be a metric name")
        name = name.lower()
        value = _number(request, "value")
        unit = _text(request, "unit")
        label = _text(request, "label")
        await _in_thread(self.app.push, name, value, unit, label)
        hub = self.app.hub
        names = hub.known_devices()
        shown_on = [
            names[device] if len(session.metrics) == 1 else f"{names[device]} needle {number}"
            for device, session in hub.sessions.items()
            for number, metric in enumerate(session.metrics, 1)
            if metric == name
        ]
        return {
            "name": name,
            "ttl_s": self.app.store.settings.custom_ttl_s,
            "label": hub.label_of(name),
            "global": hub.global_metric == name,
            # the needles of linked devices that show it now
            "shown_on": shown_on,
        }
