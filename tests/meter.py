"""A test meter: a real `websockets` client on its own thread that records what it is sent."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests import handshake
from tests.conftest import scaled


class Meter:
    """A paired device: proves its key, records every message, acks calibrations if told to."""

    def __init__(
        self,
        port: int,
        device_id: str = "dev-a",
        *,
        ack: bool = True,
        calibration: list[list[float]] | None = None,
        name: str | None = None,
        pairing: handshake.Pairing | None = None,
        needles: int = 1,
    ) -> None:
        self.device_id = device_id
        self.ack = ack
        self.messages: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._stack = contextlib.ExitStack()
        url = f"ws://127.0.0.1:{port}/device"
        self.pairing = pairing or handshake.pair(device_id)
        self.ws = self._stack.enter_context(connect(url, open_timeout=scaled(5)))
        # the PC's hello is the handshake's; what follows the proof is recorded
        self.server_hello = handshake.link(
            self.ws, device_id, self.pairing, calibration=calibration, name=name, needles=needles
        )
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        try:
            for data in self.ws:
                message = json.loads(data)
                # recorded before the ack, so whoever waited for the ack finds it here
                with self._changed:
                    self.messages.append(message)
                    self._changed.notify_all()
                if message["type"] == "calibration" and self.ack:
                    ack = {"type": "ack", "of": "calibration"}
                    if "needle" in message:  # as the firmware does: the ack names the needle
                        ack["needle"] = message["needle"]
                    self.ws.send(json.dumps(ack))
        except ConnectionClosed:
            pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._changed:
            return [m for m in self.messages if m["type"] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Wait until `count` messages of this type arrived; return all of them so far."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: sum(m["type"] == kind for m in self.messages) >= count, scaled(timeout)
            ):
                raise AssertionError(f"{self.device_id} got no {kind!r} ({self.messages[-5:]})")
        return self.of_type(kind)

    def wait_until(self, check: Any, timeout: float = 15.0) -> None:
        """Wait until `check(messages)` is true."""
        with self._changed:
            if not self._changed.wait_for(lambda: check(self.messages), scaled(timeout)):
                raise AssertionError(f"{self.device_id}: condition not met ({self.messages[-5:]})")

    def close(self) -> None:
        self._stack.close()
        self._thread.join(scaled(5))

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
