"""The ESP32 HAL and the Wi-Fi code type-check against micropython-esp32-stubs.

The stubs live apart from the app's environment: `.ci/run` installs them with
`pip --target` and names the folder in SYSBOY_ESP32_STUBS; without it the test
installs them into a cache folder of its own.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import scaled
from tests.firmware.upy import FIRMWARE

CHECKED = ["wifi.py", "hal/esp32.py"]


def _stubs_folder() -> Path:
    named = os.environ.get("SYSBOY_ESP32_STUBS")
    if named:
        return Path(named)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "sysboy2000" / "esp32-stubs"
    if not (folder / "network.pyi").exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        # install beside, then rename: an interrupted install never looks complete
        staging = Path(tempfile.mkdtemp(dir=folder.parent))
        pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run(
            [*pip, "--target", str(staging), "micropython-esp32-stubs"],
            check=True,
            timeout=scaled(300),
        )
        staging.rename(folder)
    return folder


@pytest.fixture(scope="module")
def stubs() -> Path:
    folder = _stubs_folder()
    assert (folder / "network.pyi").exists(), f"no ESP32 stubs in {folder}"
    assert (folder / "stdlib" / "VERSIONS").exists(), f"no MicroPython stdlib stubs in {folder}"
    return folder


def _mypy(stubs: Path, source_root: Path, files: list[str], tmp: Path) -> tuple[int, str]:
    """Run mypy on `files` with MicroPython's stdlib and the ESP32 stubs, errors only for them."""
    config = tmp / "mypy.ini"
    modules = ",".join(f.removesuffix(".py").replace("/", ".") for f in files)
    config.write_text(
        "[mypy]\n"
        "python_version = 3.11\n"
        # sys.platform checks take the board's branch, as on the ESP32
        "platform = esp32\n"
        f"custom_typeshed_dir = {stubs}\n"
        f"mypy_path = {stubs}{os.pathsep}{source_root}\n"
        "no_site_packages = True\n"
        "check_untyped_defs = True\n"
        "warn_unused_ignores = True\n"
        f"cache_dir = {tmp / 'cache'}\n"
        # the stubs themselves have a few errors of their own: report only ours
        "ignore_errors = True\n"
        f"[mypy-{modules}]\n"
        "ignore_errors = False\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), *files],
        cwd=source_root,
        capture_output=True,
        text=True,
        timeout=scaled(300),
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_hal_and_wifi_type_check_against_the_stubs(stubs: Path, tmp_path: Path) -> None:
    for name in CHECKED:
        assert (FIRMWARE / name).exists(), f"firmware_micropython/{name} is missing"
    code, output = _mypy(stubs, FIRMWARE, CHECKED, tmp_path)
    assert code == 0, output
    assert "Success" in output, output


def test_a_wrong_call_into_network_is_caught(stubs: Path, tmp_path: Path) -> None:
    # the same check on a copy of wifi.py with calls the real network.WLAN does not have
    broken = tmp_path / "src"
    broken.mkdir()
    text = (FIRMWARE / "wifi.py").read_text()
    text = text.replace("security=_AUTH_WPA2_PSK", 'security="wpa2"')
    text = text.replace("wlan.connect(ssid, password)", "wlan.connect(ssid, password, 7)")
    text = text.replace("wlan.PM_NONE", "wlan.PM_OFF")  # no such power mode
    (broken / "wifi.py").write_text(text)
    (broken / "hal.py").write_text("def unique_id() -> str: ...\ndef wlan_station(): ...\n")
    code, output = _mypy(stubs, broken, ["wifi.py"], tmp_path)
    assert code != 0
    assert 'No overload variant of "config" of "WLAN"' in output, output
    assert 'Too many positional arguments for "connect" of "WLAN"' in output, output
    assert '"WLAN" has no attribute "PM_OFF"' in output, output


def test_wifi_status_codes_match_the_esp32_network_module(stubs: Path) -> None:
    declared = dict(re.findall(r"^(STAT_\w+|AUTH_\w+): Final\[int\] = (\d+)", _text(stubs), re.M))
    spec = importlib.util.spec_from_file_location("fw_wifi", FIRMWARE / "wifi.py")
    assert spec and spec.loader
    wifi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wifi)
    # private constants (MicroPython folds them into the code), plain globals on CPython
    ours = {n[1:]: getattr(wifi, n) for n in dir(wifi) if n.startswith(("_STAT_", "_AUTH_"))}
    assert len(ours) >= 8
    for name, value in ours.items():
        assert int(declared[name]) == value, name


def _text(stubs: Path) -> str:
    return (stubs / "network.pyi").read_text()
