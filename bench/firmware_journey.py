"""A new user's whole journey with the firmware (sim HAL) on a MicroPython unix port.

    python -m bench.firmware_journey MODE HEAP [--micropython PATH] [--frames N] [--entry MAIN]

MODE is one of:
- `portal`: no saved network. Six page loads at once (what a phone does), a scan, and the
  form post; done when the "joined" page is shown.
- `linked`: saved settings. The device joins, finds the PC by a real mDNS query to a real
  zeroconf advert, links, follows N samples, answers each hostile frame with an error, and
  is done when the needle rests on the last sample and a status arrives after it.
- `journey`: both, through the restart that follows the saved form.

Any MemoryError the firmware prints, a page that is not 200, a link that drops, or an exit
other than the board's reset is a failure. Prints one JSON line: {"ok", "detail", ...}.
`smallest_heap` bisects `-X heapsize=` over whole probes, each in a fresh namespace when one
can be made (so the mDNS query meets only this probe's advert).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.exceptions import ConnectionClosed

from sysboy_tray.advertise import Advertiser
from tests.conftest import scaled
from tests.firmware.device_sim import ENTRY, SimDevice, firmware_settings
from tests.firmware.fake_pc import PC, TEST_PC
from tests.firmware.netns import private_network
from tests.firmware.upy import REPO, micropython

MODES = ("portal", "linked", "journey")
PAGE_LOADS = 6  # pages loading at once: what a phone opening the portal does
# the portal serves one address only a few slots: the loads come from three phones
SOURCES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
FORM = b"ssid=SysboyHome&password=hunter2hunter2&server="
LAST = 42  # the last sample's value, where the needle must come to rest
# frames a hostile or broken PC might send: each must cost one error reply, never the link
HOSTILE = (
    '{"type":"cpu","value":"' + "x" * 4000 + '"}',  # a whole frame of text where a number goes
    "[" * 99 + "]" * 99,  # nesting just under the protocol's cap
    "[" * 1000 + "]" * 1000,  # 2 KB of nesting: 147 KB of heap if parsed
    '{"type":"cpu","value":' + "1" * 4000 + "}",  # a 4,000-digit number
)


class Failed(Exception):
    """The firmware did not make it through the journey in this heap."""


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _http(port: int, request: bytes, source: str = "127.0.0.1") -> tuple[int, bytes]:
    """One request to the portal from `source`; (status, body) once the device closes."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), scaled(10)
        )
        writer.write(request)
        raw = await asyncio.wait_for(reader.read(), scaled(30))
        writer.close()
    except (OSError, TimeoutError) as exc:
        raise Failed(f"the portal dropped a request ({exc!r})") from None
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise Failed(f"the portal sent no HTTP answer ({raw[:80]!r})") from None
    return status, body


# what a phone's browser sends with each page load besides the host (Chrome on Android)
BROWSER_HEADERS = (
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n"
)


def _get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{BROWSER_HEADERS}\r\n".encode()


def _check(device: SimDevice) -> None:
    for line in device.lines:
        if "MemoryError" in line:
            raise Failed(line.strip())
    if device.exit_code is not None:
        raise Failed(f"the firmware stopped (exit status {device.exit_code})")


async def _wait(device: SimDevice, check: Callable[[], bool], what: str, timeout: float) -> None:
    def done() -> bool:
        return check() or any("MemoryError" in line for line in device.lines)

    try:
        await device.wait_for(done, what, timeout)
    except AssertionError as exc:
        _check(device)
        raise Failed(str(exc).splitlines()[0]) from None
    _check(device)


async def portal_stage(device: SimDevice, port: int) -> None:
    """Six page loads at once, a scan, the form post, then the result until it says joined."""

    def serving() -> bool:
        return any(line.startswith("portal http") for line in device.lines)

    await _wait(device, serving, "the portal", 30)
    loads = await asyncio.gather(
        *(_http(port, _get(port, "/"), SOURCES[i % len(SOURCES)]) for i in range(PAGE_LOADS))
    )
    for status, body in loads:
        if status != 200 or not body.rstrip().endswith(b"</html>"):
            raise Failed(f"a page load got {status} ({len(body)} bytes)")
    status, _ = await _http(port, _get(port, "/scan"))
    if status != 303:
        raise Failed(f"the scan got {status}")
    status, body = await _http(port, _get(port, "/"))
    token = re.search(rb'name="token" value="([^"]*)"', body)
    if status != 200 or b"SysboyHome" not in body or token is None:
        raise Failed(f"the page after the scan got {status}")
    form = FORM + b"&token=" + token.group(1)  # as the browser sends the page's form back
    head = (
        f"POST /join HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
        f"{BROWSER_HEADERS}"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    )
    status, _ = await _http(port, head.encode() + form)
    if status != 303:
        raise Failed(f"the form post got {status}")
    for _ in range(int(scaled(60))):
        status, body = await _http(port, _get(port, "/result"))
        if status != 200:
            raise Failed(f"the result page got {status}")
        if b"Setup is done" in body:
            return
        await asyncio.sleep(0.5)
    raise Failed("the join never finished")


async def linked_stage(device: SimDevice, pc: PC, frames: int) -> None:
    """Link (after the device found the PC), follow `frames` samples, answer each hostile
    frame with an error (proof the session still runs), come to rest on the last sample."""
    try:
        link = await pc.link(timeout=60)
        await link.greet()
        for i in range(frames):
            await link.send({"type": "cpu", "value": i % 100})
        for frame in HOSTILE:
            await link.send(frame)
            await link.recv_type("error", timeout=30)
        await link.send({"type": "cpu", "value": LAST})
    except (AssertionError, TimeoutError, OSError, ConnectionClosed) as exc:
        _check(device)
        raise Failed(f"the link failed ({exc!r})") from None
    await _wait(device, lambda: device.needle == LAST / 100, f"needle {LAST / 100}", 60)
    if len(pc.all) != 1 or not any("discovery: found" in line for line in device.lines):
        raise Failed(f"{len(pc.all)} links, expected one found by discovery")


async def probe(mode: str, binary: str, heap: str, entry: Path, frames: int) -> dict[str, object]:
    """Run `mode` once in `heap`; {"ok", "detail", "resets"}."""
    folder = Path(tempfile.mkdtemp(prefix="sysboy-journey-"))
    if mode == "linked":
        firmware_settings(folder)
    else:  # paired over USB as deploy pairs it; the Wi-Fi is left to the portal
        firmware_settings(folder, ssid="", password="")
    http_port = _free_port(socket.SOCK_STREAM)
    env = {
        "SYSBOY_PORTAL_HTTP_PORT": str(http_port),
        "SYSBOY_PORTAL_DNS_PORT": str(_free_port(socket.SOCK_DGRAM)),
    }
    if os.environ.get("SYSBOY_JOURNEY_NETNS") != "1":
        env["SYSBOY_MDNS_ADDR"] = "127.0.0.1"  # no private network: ask the advert directly
    pc = await PC().start()
    advert = Advertiser(TEST_PC)  # the PC the meter is paired with
    await advert.start(pc.port, ["127.0.0.1"])
    detail = "ok"
    ok = False
    resets = 0
    try:
        async with SimDevice(folder, heap=heap, entry=entry, binary=binary, **env) as device:
            try:
                if mode in ("portal", "journey"):
                    await portal_stage(device, http_port)
                if mode in ("linked", "journey"):
                    await linked_stage(device, pc, frames)
                ok = True
            except Failed as exc:
                detail = str(exc)
            resets = device.resets
    finally:
        await advert.stop()
        await pc.stop()
    return {"ok": ok, "detail": detail, "resets": resets}


def run_probe(
    mode: str, binary: str, heap_kb: int, entry: Path, frames: int, prefix: list[str] | None
) -> dict[str, object]:
    """One probe in its own process (inside `prefix`, a network namespace, when given)."""
    argv = [
        *(prefix or []),
        sys.executable,
        "-m",
        "bench.firmware_journey",
        mode,
        f"{heap_kb}K",
        "--micropython",
        binary,
        "--entry",
        str(entry),
        "--frames",
        str(frames),
    ]
    env = {**os.environ, "SYSBOY_JOURNEY_NETNS": "1" if prefix else "0"}
    result = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=scaled(600), check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"the journey probe broke:\n{result.stdout}\n{result.stderr}")
    found: dict[str, object] = json.loads(lines[-1])
    return found


# The simulator's radio (hal/simradio.py) stands in for the ESP32's `network` module, which
# is C code in the firmware's flash: on a board it takes no heap for its code. Its code's
# heap, measured on the same port, is taken off the smallest heap to give the board's figure.
_RADIO_CODE = """
import gc, sys
sys.path.insert(0, %r)
import hal
gc.collect()
before = gc.mem_alloc()
import hal.simradio
gc.collect()
print(gc.mem_alloc() - before)
"""


def radio_code_bytes(binary: str, entry: Path) -> int:
    """Heap bytes the simulator's radio code takes on `binary`, from the bundle of `entry`."""
    result = subprocess.run(
        [binary, "-c", _RADIO_CODE % str(entry.parent)],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=True,
        env={**os.environ, "SYSBOY_DEVICE_DIR": tempfile.mkdtemp(prefix="sysboy-radio-")},
    )
    return int(result.stdout.strip().splitlines()[-1])


def smallest_heap(
    mode: str, binary: str, entry: Path, frames: int, low_kb: int, high_kb: int, step_kb: int = 2
) -> tuple[int | None, str]:
    """The smallest heap (KiB, to `step_kb`) in which `mode` succeeds; None above `high_kb`.

    Bisection assumes a bigger heap never fails where a smaller one worked, which holds for
    a deterministic run up to the allocator's luck with fragmentation: the figure is +-step.
    """
    with private_network() as prefix:
        first = run_probe(mode, binary, high_kb, entry, frames, prefix)
        if not first["ok"]:
            return None, str(first["detail"])
        detail = str(first["detail"])
        while high_kb - low_kb > step_kb:
            middle = (low_kb + high_kb) // 2
            found = run_probe(mode, binary, middle, entry, frames, prefix)
            if found["ok"]:
                high_kb = middle
            else:
                low_kb = middle
                detail = str(found["detail"])
        return high_kb, detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("heap", help="MicroPython heap, as for -X heapsize= (64K)")
    parser.add_argument("--micropython", default=micropython(), help="the interpreter")
    parser.add_argument("--entry", type=Path, default=ENTRY, help="the firmware's main.py")
    parser.add_argument("--frames", type=int, default=1000, help="samples in the linked stage")
    args = parser.parse_args()
    found = asyncio.run(probe(args.mode, args.micropython, args.heap, args.entry, args.frames))
    print(json.dumps(found))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
