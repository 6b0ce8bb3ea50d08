"""Drive a real headless Chromium over the DevTools protocol (its websocket), for page tests."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.conftest import scaled
from tests.debian import need

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]


def chromium() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """A headless Chromium with a fresh profile and one page, closed on exit."""

    def __init__(self, profile: Path) -> None:
        need("chromium")
        binary = chromium()
        assert binary
        self.profile = profile
        self.log = (profile.parent / "chromium.log").open("w")
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ws: ClientConnection | None = None
        self.closing = contextlib.ExitStack()
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        port = self._devtools_port()
        deadline = time.monotonic() + scaled(20)
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            if pages or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert pages, "chromium opened no page"
        self.ws = self.closing.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        )
        self.send("Page.enable")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.closing.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def _devtools_port(self) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + scaled(30)
        while time.monotonic() < deadline:
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            assert self.proc.poll() is None, "chromium exited at start"
            time.sleep(0.05)
        raise AssertionError("chromium did not open its DevTools port")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events meanwhile are kept)."""
        assert self.ws is not None
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=scaled(30)))
            if message.get("id") == call_id:
                assert "error" not in message, message
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        """Wait for the next event `method` (kept ones first)."""
        assert self.ws is not None
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    del self.events[i]
                    return event
            left = deadline - time.monotonic()
            assert left > 0, f"no {method} event"
            self.events.append(json.loads(self.ws.recv(timeout=left)))

    def open(self, url: str) -> None:
        """Load `url` and wait until it has loaded."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired", scaled(30))

    def evaluate(self, expression: str) -> Any:
        """The value of a DevTools console expression in the page (the page has no script)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def text(self) -> str:
        """What the page shows, as text."""
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def _node(self, selector: str) -> int:
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = int(self.send("DOM.querySelector", nodeId=root, selector=selector)["nodeId"])
        assert node, f"nothing matches {selector!r}"
        return node

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type `text` into it, as a keyboard would."""
        self.send("DOM.focus", nodeId=self._node(selector))
        self.send("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        """Click the middle of an element with the mouse."""
        node = self._node(selector)
        self.send("DOM.scrollIntoViewIfNeeded", nodeId=node)
        quad = self.send("DOM.getBoxModel", nodeId=node)["model"]["content"]
        x = (quad[0] + quad[2] + quad[4] + quad[6]) / 4
        y = (quad[1] + quad[3] + quad[5] + quad[7]) / 4
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def phone(self, width: int = 390, height: int = 844) -> None:
        """Show pages as a phone does (viewport, scale, touch)."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2,
            mobile=True,
        )
        self.send("Emulation.setTouchEmulationEnabled", enabled=True)

    def screenshot(self, path: Path) -> bytes:
        """Save the whole page as a PNG."""
        data = base64.b64decode(
            self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        )
        path.write_bytes(data)
        return data
