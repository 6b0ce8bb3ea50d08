"""Several needles on the PC side: what each needle is sent, and what a one-needle meter keeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sysboy_tray.app import App
from sysboy_tray.control_client import ControlClient
from sysboy_tray.errors import ControlError
from tests.conftest import SettableSource, running_app, scaled
from tests.meter import Meter


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
