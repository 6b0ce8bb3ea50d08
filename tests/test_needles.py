"""Several needles on the PC side: what each needle is sent, and what a one-needle meter keeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray.app import App
from sysboy_tray.control_client import ControlClient
from sysboy_tray.errors import ControlError
from sysboy_tray.tray.menu import TrayMenu
from tests.conftest import SettableSource, running_app, scaled
from tests.console import sysboy
from tests.meter import Meter
from tests.tray_parts import dummy_menu, find


@pytest.fixture
def sources() -> dict[str, SettableSource]:
    return {
        "cpu": SettableSource("cpu", 12.5, label="CPU"),
        "ram": SettableSource("ram", 40.0, label="RAM"),
        "vram": SettableSource("vram", 60.5, label="VRAM"),
    }


@pytest.fixture
def app(sources: dict[str, SettableSource]) -> Iterator[App]:
    with running_app(sources, {"metric": "vram"}) as running:
        yield running


@pytest.fixture
def client(app: App) -> Iterator[ControlClient]:
    with ControlClient.find(timeout=scaled(5)) as control:
        yield control


def test_a_one_needle_meter_gets_the_briefs_plain_messages(app: App, client: ControlClient) -> None:
    with Meter(app.port, "dev-a") as meter:
        sample = meter.wait_for("vram")[0]
        # exactly the brief's format, plus the optional extras: no `needle` key
        assert sample["type"] == "vram" and sample["value"] == 60.5
        assert "needle" not in sample
        client.sweep("dev-a")
        client.identify("dev-a", 1)  # needle 1 of a one-needle meter: a plain identify
        client.calibrate(((0.0, 0.0), (100.0, 0.9)), "dev-a")
        client.needle(0.5, "dev-a")
        meter.wait_for("needle")
        for kind in ("sweep", "identify", "calibration", "needle"):
            assert "needle" not in meter.of_type(kind)[0], kind
        client.set_metric("cpu", "dev-a", 1)
        assert "needle" not in meter.wait_for("cpu")[0]
        assert app.store.settings.devices["dev-a"].needle(1).metric == "cpu"


def test_a_needle_the_meter_lacks_is_refused_in_words(app: App, client: ControlClient) -> None:
    with Meter(app.port, "dev-a") as meter:
        meter.wait_for("vram")
        for call in (
            lambda: client.set_metric("cpu", "dev-a", 2),
            lambda: client.identify("dev-a", 2),
            lambda: client.calibration("dev-a", 2),
            lambda: client.needle(0.3, "dev-a", 3),
        ):
            with pytest.raises(ControlError, match="dev-a' has no needle"):
                call()
        with pytest.raises(ControlError, match="needle number, 1 to 4"):
            client.request("metric", metric="cpu", device="dev-a", needle=5)
        assert client.status().devices[0].metric == "vram"  # nothing changed
    assert "dev-a" not in app.store.settings.devices


def tray_menu(app: App, tmp_path: Path, opened: list[tuple[Any, ...]]) -> TrayMenu:
    return dummy_menu(app, tmp_path, open_calibration=lambda *args: opened.append(args))


def shows(meter: Meter, metric: str, needle: int | None) -> bool:
    """The meter got a sample of `metric` for `needle` (None: needle 1, sent without a key)."""
    latest = [m for m in meter.of_type(metric) if m.get("needle") == needle]
    return bool(latest)


def test_each_needle_shows_its_own_metric_and_only_shown_metrics_are_read(
    app: App, client: ControlClient, sources: dict[str, SettableSource]
) -> None:
    with Meter(app.port, "dev-a", needles=2) as meter:
        # both needles follow the tray's metric until told otherwise
        meter.wait_until(lambda _: shows(meter, "vram", None) and shows(meter, "vram", 2))
        client.set_metric("cpu", "dev-a", 2)
        meter.wait_until(lambda _: shows(meter, "cpu", 2))
        assert meter.of_type("cpu")[-1]["value"] == 12.5
        switched = len(meter.messages)
        sources["cpu"].value = 70.0
        meter.wait_until(lambda m: any(x.get("value") == 70.0 for x in m if x["type"] == "cpu"))
        sources["vram"].value = 33.0
        meter.wait_until(lambda m: any(x.get("value") == 33.0 for x in m if x["type"] == "vram"))
        # needle 1 keeps the plain samples; needle 2's carry its number
        after = meter.messages[switched:]
        assert all("needle" not in m for m in after if m["type"] == "vram")
        assert all(m["needle"] == 2 for m in meter.of_type("cpu"))
        assert not meter.of_type("ram")
        # only the metrics some needle shows are read
        assert app.hub.wanted() == {"vram", "cpu"}
        reads = sources["ram"].reads
        time.sleep(scaled(0.6))  # six sampler intervals
        assert sources["ram"].reads == reads
        assert sources["cpu"].reads > 0
        (device,) = client.status().devices
        assert [n.metric for n in device.needles] == ["vram", "cpu"]
        assert device.metric == "vram"
    assert app.store.settings.devices["dev-a"].needle(2).metric == "cpu"


def test_the_button_cycles_its_needle_and_a_long_press_moves_it(app: App) -> None:
    with Meter(app.port, "dev-a", needles=2) as meter:
        meter.wait_for("vram")
        meter.ws.send('{"type": "button", "event": "press"}')
        meter.wait_until(lambda _: shows(meter, "cpu", None))  # needle 1: vram -> cpu
        meter.ws.send('{"type": "button", "event": "long"}')
        identify = meter.wait_for("identify")[-1]
        assert identify["needle"] == 2  # the needle the button now acts on wiggles
        meter.ws.send('{"type": "button", "event": "press"}')
        meter.wait_until(lambda _: shows(meter, "cpu", 2))  # needle 2: vram -> cpu
        device = app.store.settings.devices["dev-a"]
        assert (device.needle(1).metric, device.needle(2).metric) == ("cpu", "cpu")
        meter.ws.send('{"type": "button", "event": "long"}')
        assert meter.wait_for("identify", count=2)[-1]["needle"] == 1  # round again


def test_tray_and_cli_choices_per_needle_survive_a_restart(
    sources: dict[str, SettableSource], tmp_path: Path
) -> None:
    opened: list[tuple[Any, ...]] = []
    with running_app(sources, {"metric": "vram"}) as app:
        menu = tray_menu(app, tmp_path, opened)
        with Meter(app.port, "dev-a", needles=2) as meter:
            meter.wait_for("vram")
            find(menu, "Devices", "dev-a", "Needle 2", "Metric", "RAM")(None)
            meter.wait_until(lambda _: shows(meter, "ram", 2))
            assert find(menu, "Devices", "dev-a", "Needle 2", "Metric", "RAM").checked
            assert find(menu, "Devices", "dev-a", "Needle 1", "Metric", "Same as").checked
            chosen = sysboy("metric", "cpu", "--device", "dev-a", "--needle", "1")
            assert chosen.returncode == 0, chosen.stderr
            assert chosen.stdout == "needle 1 of device dev-a now shows cpu\n"
            meter.wait_until(lambda _: shows(meter, "cpu", None))
            find(menu, "Devices", "dev-a", "Needle 2", "Calibrate")(None)
            assert opened == [("dev-a", 2)]
            refused = sysboy("metric", "cpu", "--device", "dev-a", "--needle", "3")
            assert refused.returncode != 0 and "has no needle 3" in refused.stderr
            pairing = meter.pairing
        assert app.store.flush()
    # a new start of the app, on the same settings file
    with running_app(sources) as again:
        menu = tray_menu(again, tmp_path, opened)
        with Meter(again.port, "dev-a", needles=2, pairing=pairing) as meter:
            meter.wait_until(lambda _: shows(meter, "cpu", None) and shows(meter, "ram", 2))
            assert not meter.of_type("vram")
            assert find(menu, "Devices", "dev-a", "Needle 1", "Metric", "CPU").checked
            assert find(menu, "Devices", "dev-a", "Needle 2", "Metric", "RAM").checked
            status = sysboy("status").stdout
            assert "needle 1 CPU (cpu) [button], needle 2 RAM (ram)" in status, status
