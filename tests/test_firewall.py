"""Windows Firewall: the no-admin check against PowerShell's answers, and the elevated fix.

The answers in tests/vectors/firewall are what the check's PowerShell prints with
ConvertTo-Json (Windows PowerShell 5.1), including its habit of writing a one-element
array as an object and some arrays as {"value": [...], "Count": n}; the netsh_*.txt ones
are netsh's English output (CRLF), read when PowerShell cannot run. PowerShell, netsh and
ShellExecute are the faked boundary; the parsing, the verdicts and the command line
built for the UAC prompt are the real code.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sysboy_tray.firewall import NoFirewallCheck, firewall_for, powershell, windows

ANSWERS = Path(__file__).parent / "vectors" / "firewall"
PORT = 47800


def answer(name: str) -> str:
    return (ANSWERS / f"{name}.json").read_text("utf-8")


def test_public_network_with_no_rule_is_blocked() -> None:
    found = windows.verdict(answer("public_no_rule"), PORT)
    assert found is not None
    assert found.blocked and found.fixable
    assert (found.profile, found.network) == ("Public", "Wi-Fi")
    assert found.summary == (
        "Windows Firewall blocks meters on this Public network (Wi-Fi): no rule lets Sysboy in"
    )


def test_a_block_rule_beats_the_allow_rules() -> None:
    found = windows.verdict(answer("public_block_rule"), PORT)
    assert found is not None and found.blocked
    assert found.profile == "Public" and found.network == "Wi-Fi"  # WSL's network is not it
    assert "a firewall rule (sysboy.exe) blocks Sysboy" in found.summary


def test_private_network_allowed() -> None:
    found = windows.verdict(answer("private_allowed"), PORT)
    assert found is not None
    assert not found.blocked and not found.fixable
    assert (found.profile, found.network) == ("Private", "Ethernet")
    # the same PC on a Public network: its rules are for Private networks only
    public = answer("private_allowed").replace('"category":"1"', '"category":"0"')
    moved = windows.verdict(public, PORT)
    assert moved is not None and moved.blocked and moved.profile == "Public"


def test_domain_profile_with_tcp_allowed_but_not_mdns() -> None:
    found = windows.verdict(answer("domain_tcp_only"), PORT)
    assert found is not None and found.blocked
    assert (found.profile, found.network) == ("Domain", "Ethernet")  # not the Tailscale one
    assert "blocks discovery (mDNS)" in found.summary
    # a port the TCP rule does not cover: blocked outright
    other = windows.verdict(answer("domain_tcp_only"), 47801)
    assert other is not None and "no rule lets Sysboy in" in other.summary


def test_firewall_turned_off_lets_everything_in() -> None:
    found = windows.verdict(answer("private_firewall_off"), PORT)
    assert found is not None and not found.blocked
    assert found.summary == "Windows Firewall is off on this Private network (Wi-Fi)"


def test_block_all_incoming_connections() -> None:
    text = answer("public_no_rule").replace(
        '"name":"Public","enabled":"True","inbound":"NotConfigured","allowInboundRules":"NotConfigured"',
        '"name":"Public","enabled":"True","inbound":"NotConfigured","allowInboundRules":"False"',
    )
    found = windows.verdict(text, PORT)
    assert found is not None and found.blocked
    assert "blocks all incoming connections" in found.summary


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"profiles": []}', "\ufeff{"])
def test_an_unreadable_answer_is_no_verdict(text: str) -> None:
    assert windows.verdict(text, PORT) is None


# ---------------------------------------------------------------- PowerShell, faked


class FakePowerShell:
    """subprocess.run for powershell.exe: records the call, prints a recorded answer."""

    def __init__(self, stdout: str) -> None:
        self.stdout = stdout
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((argv, options))
        return subprocess.CompletedProcess(argv, 0, self.stdout, "")


def test_the_check_asks_powershell_without_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    fake = FakePowerShell(answer("public_block_rule"))
    monkeypatch.setattr(subprocess, "run", fake)
    programs = [r"C:\Users\ana\Downloads\sysboy\sysboy.exe"]
    found = windows.WindowsFirewall(programs).check(PORT)
    assert found is not None and found.blocked
    (argv, options) = fake.calls[0]
    assert argv[0] == r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    assert argv[1:-1] == [
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-WindowStyle",
        "Hidden",
        "-EncodedCommand",
    ]
    script = powershell.decode_command(" ".join(argv))
    assert script.splitlines()[1] == "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8"
    assert options["encoding"] == "utf-8"
    assert f"$programs = @('{programs[0]}')" in script
    # read-only: nothing in the check changes a rule, and nothing asks for elevation
    for verb in ("New-NetFirewallRule", "Remove-NetFirewallRule", "Set-Net", "RunAs"):
        assert verb not in script


def test_no_powershell_means_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(argv: list[str], **options: Any) -> None:
        raise FileNotFoundError(2, "The system cannot find the file specified")

    monkeypatch.setattr(subprocess, "run", missing)
    assert windows.WindowsFirewall(["C:\\sysboy.exe"]).check(PORT) is None


# ---------------------------------------------------------------- the elevated command


def test_the_allow_command_line(tmp_path: Path) -> None:
    programs = [r"C:\Users\O'Brien\sysboy\sysboy.exe", r"C:\Users\O'Brien\sysboy\sysboy-cli.exe"]
    parameters = powershell.encoded_command(powershell.allow_script(programs, 47801, "Public"))
    head, encoded = parameters.rsplit(" ", 1)
    assert head == (
        "-NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden -EncodedCommand"
    )
    script = base64.b64decode(encoded).decode("utf-16-le")
    assert script == powershell.decode_command(parameters)
    lines = script.splitlines()
    assert lines[0] == "$ErrorActionPreference = 'Stop'"
    # the apostrophe in the user's name is doubled inside PowerShell's single quotes
    assert lines[1] == (
        r"$programs = @('C:\Users\O''Brien\sysboy\sysboy.exe', "
        r"'C:\Users\O''Brien\sysboy\sysboy-cli.exe')"
    )
    # leftovers go first: this command's own older rules, then block rules for the program
    assert (
        lines[2]
        == "$old = @(Get-NetFirewallRule -Group 'Sysboy2000' -ErrorAction SilentlyContinue)"
    )
    assert lines[3].startswith("$filters = @(Get-NetFirewallApplicationFilter | Where-Object")
    assert "-AssociatedNetFirewallApplicationFilter $filter" in lines[4]
    assert "-eq 'Inbound' -and" in lines[4] and "-eq 'Block'" in lines[4]
    # nothing is ever piped into a command that changes rules, and every removal is named:
    # a Remove-NetFirewallRule left without input may act on every rule on the PC
    assert lines[5] == (
        "foreach ($rule in $old) { if ($rule.Name) "
        "{ Remove-NetFirewallRule -Name $rule.Name -ErrorAction Continue } }"
    )
    assert sum("Remove-NetFirewallRule" in line for line in lines) == 1
    assert not any(re.search(r"\|\s*(Remove|Set|New)-NetFirewall", line) for line in lines)
    tcp, udp = (line for line in lines if "New-NetFirewallRule" in line)
    for rule in (tcp, udp):
        assert "-Direction Inbound -Action Allow -Program $program" in rule
        assert "-RemoteAddress LocalSubnet -Profile Public" in rule
    assert "-Protocol TCP -LocalPort 47801 " in tcp
    assert "-Protocol UDP -LocalPort 5353 " in udp
    assert lines.index(tcp) > 3  # allow rules come after every removal


class FakeWinFunction:
    """One function of a DLL as ctypes shows it: argtypes and restype set, then called."""

    def __init__(self, result: int) -> None:
        self.result = result
        self.argtypes: list[Any] | None = None
        self.restype: Any = None
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> int:
        assert self.argtypes is not None and len(args) == len(self.argtypes)
        self.calls.append(args)
        return self.result


class FakeShell32:
    """shell32 with ShellExecuteW answering as Windows would."""

    def __init__(self, result: int) -> None:
        self.ShellExecuteW = FakeWinFunction(result)
        self.calls = self.ShellExecuteW.calls


@pytest.fixture
def shell32(monkeypatch: pytest.MonkeyPatch) -> Any:
    import ctypes

    def load(result: int) -> FakeShell32:
        fake = FakeShell32(result)
        monkeypatch.setattr(sys, "platform", "win32")
        monkeypatch.setattr(
            ctypes, "WinDLL", lambda name, **kw: fake if name == "shell32" else None, raising=False
        )
        return fake

    return load


def test_allow_runs_powershell_elevated(shell32: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    monkeypatch.setattr(subprocess, "run", FakePowerShell(answer("public_block_rule")))
    firewall = windows.WindowsFirewall([r"C:\sysboy\sysboy.exe"])
    firewall.check(PORT)
    fake = shell32(42)  # above 32: started
    assert firewall.allow(PORT) is True
    (hwnd, verb, program, parameters, folder, show) = fake.calls[0]
    assert (hwnd, verb, folder, show) == (None, "runas", None, windows.SW_HIDE)
    assert program == r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    script = powershell.decode_command(parameters)
    assert "-Profile Public" in script  # the network the check found blocked
    assert f"-Protocol TCP -LocalPort {PORT} " in script


def test_allow_refused_at_the_prompt(shell32: Any) -> None:
    shell32(5)  # SE_ERR_ACCESSDENIED: the user said No
    firewall = windows.WindowsFirewall([r"C:\sysboy\sysboy.exe"])
    assert firewall.allow(PORT) is False


def test_programs_include_the_console_twin(tmp_path: Path) -> None:
    app = tmp_path / "sysboy.exe"
    app.write_bytes(b"")
    assert windows.app_programs(str(app)) == [str(app)]
    (tmp_path / "sysboy-cli.exe").write_bytes(b"")
    assert windows.app_programs(str(app)) == [str(app), str(tmp_path / "sysboy-cli.exe")]


def test_one_place_chooses() -> None:
    assert isinstance(firewall_for("win32"), windows.WindowsFirewall)
    assert isinstance(firewall_for("linux"), NoFirewallCheck)
    assert firewall_for("linux").check(PORT) is None


# ---------------------------------------------------------------- in the running app


def test_status_tells_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    from sysboy_tray.app import App
    from sysboy_tray.commands.status import describe
    from sysboy_tray.config import Paths
    from sysboy_tray.control import control_factory
    from sysboy_tray.control_client import ControlClient
    from tests.conftest import SettableSource, scaled

    fake = FakePowerShell(answer("public_no_rule"))
    monkeypatch.setattr(subprocess, "run", fake)
    paths = Paths.default()
    app = App(
        paths,
        sources={"cpu": SettableSource("cpu")},
        port=0,
        advertise=False,
        control=control_factory(paths),
        firewall=windows.WindowsFirewall([r"C:\sysboy\sysboy.exe"]),
    )
    changes: list[int] = []
    app.start()
    try:
        app.add_listener(lambda: changes.append(1))
        deadline = time.monotonic() + scaled(10)
        while app.firewall() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        verdict = app.firewall()
        assert verdict is not None and verdict.blocked
        with ControlClient.find() as client:
            lines = describe(client.status())
        assert (
            "Firewall: Windows Firewall blocks meters on this Public network (Wi-Fi): no rule "
            "lets Sysboy in; fix: tray menu > Allow meters on this network…"
        ) in lines
        # the user allowed meters: the next look finds the rules, and the tray hears of it
        fake.stdout = answer("private_allowed")
        seen = len(changes)
        app._firewall._wake.set()  # type: ignore[union-attr]  # the next periodic look, now
        deadline = time.monotonic() + scaled(10)
        while (app.firewall() or verdict).blocked and time.monotonic() < deadline:
            time.sleep(0.02)
        assert app.firewall() is not None and not app.firewall().blocked  # type: ignore[union-attr]
        deadline = time.monotonic() + scaled(5)
        while len(changes) == seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(changes) > seen
        with ControlClient.find() as client:
            assert (
                "Firewall: Windows Firewall lets meters in on this Private network (Ethernet)"
                in (describe(client.status()))
            )
    finally:
        app.stop()


def test_the_tray_menu_offers_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sysboy_tray.app import App
    from sysboy_tray.autostart import NoAutostart
    from sysboy_tray.tray.backend import load_tray
    from sysboy_tray.tray.menu import ALLOW_METERS, TrayMenu
    from tests.conftest import SettableSource, scaled

    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    monkeypatch.setattr(subprocess, "run", FakePowerShell(answer("public_block_rule")))
    firewall = windows.WindowsFirewall([r"C:\sysboy\sysboy.exe"])
    asked: list[int] = []
    monkeypatch.setattr(firewall, "allow", lambda port: asked.append(port) or True)
    app = App(sources={"cpu": SettableSource("cpu")}, port=0, advertise=False, firewall=firewall)
    app.start()
    try:
        deadline = time.monotonic() + scaled(10)
        while app.firewall() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        menu = TrayMenu(
            app,
            load_tray(),
            NoAutostart(),
            open_calibration=print,
            open_folder=print,
            show_about=print,
            quit=print,
        )
        first = menu.menu().items[0]
        assert first.text == ALLOW_METERS
        first(None)
        assert asked == [app.port]
        assert app.take_notices() == []
        # the user said no at the UAC prompt: ShellExecute did not start it
        monkeypatch.setattr(firewall, "allow", lambda port: False)
        first(None)
        assert app.take_notices() == [
            "The firewall was left as it was (the Windows prompt was declined or could not open)."
        ]
    finally:
        app.stop()


def test_a_bom_and_adapter_names_in_any_language() -> None:
    # [Console]::OutputEncoding = UTF8 makes Windows PowerShell write a BOM first
    text = "\ufeff" + answer("public_no_rule").replace('"Wi-Fi"', '"WLAN-Verbindung 2 (Büro)"')
    found = windows.verdict(text, PORT)
    assert found is not None and found.network == "WLAN-Verbindung 2 (Büro)"


# ---------------------------------------------------------------- netsh, when PowerShell is barred

NETSH_EXE = r"C:\Users\ana\Downloads\sysboy\sysboy.exe"


def netsh_answer(name: str) -> str:
    return (ANSWERS / f"netsh_{name}.txt").read_text("utf-8")


def test_netsh_public_network_after_a_cancelled_prompt() -> None:
    found = windows.netsh_verdict(
        netsh_answer("profile_public"), netsh_answer("rules_cancelled_prompt"), [NETSH_EXE], PORT
    )
    assert found is not None and found.blocked and found.fixable
    assert found.profile == "Public" and found.network == ""
    assert found.summary.startswith(
        "a firewall rule (sysboy.exe) blocks Sysboy on this Public network;"
    )


def test_netsh_private_network_allowed() -> None:
    found = windows.netsh_verdict(
        netsh_answer("profile_private"), netsh_answer("rules_cancelled_prompt"), [NETSH_EXE], PORT
    )
    assert found is not None and not found.blocked
    assert found.summary == "Windows Firewall lets meters in on this Private network"


def test_netsh_domain_profile_tcp_only() -> None:
    found = windows.netsh_verdict(
        netsh_answer("profile_domain"),
        netsh_answer("rules_domain_tcp_only"),
        [r"c:\tools\SYSBOY\sysboy.exe"],  # Windows paths match whatever their case
        PORT,
    )
    assert found is not None and found.blocked and found.profile == "Domain"
    assert "blocks discovery (mDNS)" in found.summary


def test_netsh_public_with_no_rule_and_block_all_incoming() -> None:
    nothing = windows.netsh_verdict(
        netsh_answer("profile_public"), netsh_answer("rules_domain_tcp_only"), [NETSH_EXE], PORT
    )
    assert nothing is not None and nothing.blocked
    assert nothing.summary.endswith("no rule lets Sysboy in")
    shields_up = netsh_answer("profile_private").replace("BlockInbound,", "BlockInboundAlways,")
    found = windows.netsh_verdict(
        shields_up, netsh_answer("rules_cancelled_prompt"), [NETSH_EXE], PORT
    )
    assert found is not None and found.blocked
    assert "blocks all incoming connections" in found.summary


def test_netsh_in_another_language_gives_no_verdict() -> None:
    assert (
        windows.netsh_verdict(
            netsh_answer("profile_german"),
            netsh_answer("rules_cancelled_prompt"),
            [NETSH_EXE],
            PORT,
        )
        is None
    )


def test_netsh_is_asked_when_powershell_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMROOT", r"C:\Windows")
    asked: list[list[str]] = []

    def run(argv: list[str], **options: Any) -> subprocess.CompletedProcess[Any]:
        asked.append(argv)
        if argv[0].endswith("powershell.exe"):
            raise PermissionError(13, "This program is blocked by group policy")
        text = netsh_answer(
            "profile_public" if "currentprofile" in argv else "rules_cancelled_prompt"
        )
        return subprocess.CompletedProcess(argv, 0, text.encode("cp437"), b"")

    monkeypatch.setattr(subprocess, "run", run)
    found = windows.WindowsFirewall([NETSH_EXE]).check(PORT)
    assert found is not None and found.blocked and found.profile == "Public"
    assert [a[0] for a in asked] == [
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        r"C:\Windows\System32\netsh.exe",
        r"C:\Windows\System32\netsh.exe",
    ]
    assert asked[1][1:] == ["advfirewall", "show", "currentprofile"]
    assert asked[2][1:] == [
        "advfirewall",
        "firewall",
        "show",
        "rule",
        "name=all",
        "dir=in",
        "verbose",
    ]
