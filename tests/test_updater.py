"""The PC's side of firmware updates: versions, the bundle it carries, what status shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sysboy_tray import __version__, protocol
from sysboy_tray.commands.firmware import progress_line
from sysboy_tray.commands.status import describe
from sysboy_tray.control_client import AppStatus, DeviceStatus, UpdateProgress
from sysboy_tray.firmware_tool import FirmwareError, build
from sysboy_tray.updater import LAUNCHER, is_newer, load_bundle, version_key
from tests.firmware.test_protocol_parity import fw


def test_versions_compare_as_numbers() -> None:
    assert version_key("0.10.0") == (0, 10, 0)
    assert is_newer("0.10.0", "0.9.1")
    assert is_newer("0.2.0", "0.1.0")
    assert not is_newer("0.1.0", "0.1.0")
    assert not is_newer("0.1.0", "0.2.0")
    assert is_newer("1.0", "0.9.9+local")
    assert not is_newer("0.2.0", "sim build")  # a version we cannot read is never offered one
    assert not is_newer("", "0.1.0")


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    build(out, version="0.2.0")
    return out


def test_the_bundle_carries_the_apps_version_by_default(tmp_path: Path) -> None:
    manifest = build(tmp_path / "b")
    assert manifest["firmware_version"] == __version__


def test_the_whole_bundle_is_sent_except_what_rolls_back(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert bundle.version == "0.2.0"
    names = {entry["path"] for entry in manifest["files"]}
    assert set(bundle.files) == names - LAUNCHER
    assert names >= LAUNCHER
    text = protocol.encode(bundle.manifest())
    assert len(text.encode()) <= protocol.MAX_FRAME_BYTES
    decoded = fw.decode(text, "server")  # the device's own decoder takes it
    assert decoded["version"] == "0.2.0" and len(decoded["files"]) == len(bundle.files)


def test_a_changed_file_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    build(tmp_path / "b", version="0.2.0")
    (tmp_path / "b" / "app.mpy").write_bytes(b"not what was built")
    with pytest.raises(FirmwareError, match="changed since the build"):
        load_bundle(tmp_path / "b")


def test_status_shows_each_meters_version_and_its_update() -> None:
    def device(device_id: str, fw: str, available: bool, update: str) -> DeviceStatus:
        return DeviceStatus(
            device_id, device_id, "10.0.0.2", "esp32", fw, "cpu", None, ((0, 0), (100, 1)),
            update_available=available, update=update,
        )  # fmt: skip

    status = AppStatus(
        version=__version__, port=47800, addresses=(), advertised=(), metric="cpu",
        interval_s=1.0, metrics=(), firmware="0.2.0",
        devices=(
            device("meter1", "0.1.0", True, ""),
            device("meter2", "0.1.0", True, "updating to 0.2.0: 45 %"),
            device("meter3", "0.2.0", False, ""),
        ),
    )  # fmt: skip
    text = "\n".join(describe(status))
    assert "fw 0.1.0" in text and "fw 0.2.0" in text
    assert "firmware update available: 0.2.0 (sysboy firmware update meter1)" in text
    assert "firmware: updating to 0.2.0: 45 %" in text
    assert text.count("update available") == 1  # meter3 runs it already


def test_the_progress_bar_fills_with_the_bytes_sent() -> None:
    half = UpdateProgress("0.2.0", "sending", 500, 1000, "updating to 0.2.0: 50 %")
    assert progress_line(half) == "[" + "#" * 15 + "-" * 15 + "] updating to 0.2.0: 50 %"
    assert progress_line(UpdateProgress("0.2.0", "done", 1000, 1000, "x")).startswith(
        "[" + "#" * 30
    )


def test_a_usb_deploy_removes_the_pointer_the_firmware_keeps() -> None:
    from sysboy_tray.firmware_tool import UPDATE_POINTER
    from tests.test_update_link import ota, pointer

    assert set(pointer._COPIES) | {f"{pointer.FOLDER}/{ota.STAGE}"} == set(UPDATE_POINTER)
