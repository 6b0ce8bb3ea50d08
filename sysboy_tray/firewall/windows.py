"""Windows Firewall: read without admin rights (PowerShell), fixed by one elevated command.

The check asks PowerShell's NetSecurity and NetConnection modules, whose property
values are the same on every Windows language (netsh's text is translated), and has
them printed as JSON: the connected networks and how Windows classed them, the three
firewall profiles, and the inbound rules whose program is this app. `verdict()` turns
that into one sentence. Where PowerShell may not run (a policy can bar it), netsh's
English output is read instead (netsh.py). Everything that runs a program or calls the
Windows API is in `WindowsFirewall` and below, so the rest imports and is tested anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysboy_tray.firewall import MDNS_PORT, FirewallVerdict, netsh
from sysboy_tray.firewall.powershell import (
    allow_script,
    encoded_command,
    powershell,
    query_script,
)
from sysboy_tray.netifs import is_virtual_name

log = logging.getLogger(__name__)

QUERY_TIMEOUT_S = 30.0
SW_HIDE = 0
# NetConnectionProfile.NetworkCategory, as text or as the enum's number
_CATEGORIES = {"public": "Public", "private": "Private", "domainauthenticated": "Domain"}
_CATEGORY_NUMBERS = {"0": "Public", "1": "Private", "2": "Domain"}


# -- reading the query's answer ---------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One inbound firewall rule for this app's program."""

    name: str
    enabled: bool
    action: str
    profiles: frozenset[str]
    protocol: str
    ports: tuple[str, ...]
    program: str

    def applies(self, profile: str, protocol: str, port: int) -> bool:
        """True when this rule is on and decides `protocol` traffic to `port` on `profile`."""
        if not self.enabled:
            return False
        if "Any" not in self.profiles and profile not in self.profiles:
            return False
        number = {"TCP": "6", "UDP": "17"}[protocol]
        if self.protocol.upper() not in ("ANY", protocol, number):
            return False
        return any(_port_matches(p, port) for p in self.ports or ("Any",))


def _port_matches(spec: str, port: int) -> bool:
    spec = spec.strip()
    if spec.lower() == "any":
        return True
    low, _, high = spec.partition("-")
    try:
        return int(low) <= port <= int(high or low)
    except ValueError:  # RPC, IPHTTPS and other keywords never match a plain port
        return False


@dataclass(frozen=True)
class FirewallState:
    """What the query printed: connected networks, firewall profiles, this app's rules."""

    networks: tuple[tuple[str, str], ...]  # (adapter alias, "Public"/"Private"/"Domain")
    profiles: dict[str, dict[str, str]]
    rules: tuple[Rule, ...]


def _items(value: Any) -> list[Any]:
    # ConvertTo-Json writes one element as an object, and some arrays as {"value": [...]}
    if value is None:
        return []
    if isinstance(value, dict) and "value" in value and isinstance(value["value"], list):
        return list(value["value"])
    return list(value) if isinstance(value, list) else [value]


def _category(raw: Any) -> str:
    text = str(raw).strip()
    return _CATEGORIES.get(text.lower()) or _CATEGORY_NUMBERS.get(text, text)


def parse_state(text: str) -> FirewallState:
    """The query's JSON as a FirewallState.

    Raises:
        ValueError: the text is not what the query prints.
    """
    data = json.loads(text.lstrip("\ufeff"))
    if not isinstance(data, dict):
        raise ValueError("the firewall query did not print an object")
    return state_from(data)


def state_from(data: dict[str, Any]) -> FirewallState:
    """A FirewallState from the query's data (or the same shape built from netsh's text)."""
    networks = tuple(
        (str(n.get("alias", "")), _category(n.get("category", "")))
        for n in _items(data["networks"])
    )
    profiles = {
        str(p.get("name", "")): {k: str(v) for k, v in p.items()}
        for p in _items(data.get("profiles"))
    }
    rules = tuple(
        Rule(
            name=str(r.get("name", "")),
            enabled=str(r.get("enabled", "")).lower() == "true",
            action=str(r.get("action", "")),
            profiles=frozenset(p.strip() for p in str(r.get("profile", "Any")).split(",")),
            protocol=str(r.get("protocol", "Any")),
            ports=tuple(str(p) for p in _items(r.get("localPort"))),
            program=str(r.get("program", "")),
        )
        for r in _items(data.get("rules"))
    )
    return FirewallState(networks, profiles, rules)


def _one_network(state: FirewallState, port: int) -> FirewallVerdict:
    """The verdict for the first real (not virtual) connected network."""
    real = [n for n in state.networks if not is_virtual_name(n[0])]
    verdicts = [network_verdict(state, alias, profile, port) for alias, profile in real]
    blocked = [v for v in verdicts if v.blocked]
    if blocked:
        return blocked[0]
    if verdicts:
        return verdicts[0]
    return FirewallVerdict(False, "", "", "no network is connected")


def network_verdict(state: FirewallState, alias: str, profile: str, port: int) -> FirewallVerdict:
    """Whether meters get in on one network, and why, in a sentence."""
    where = f"this {profile} network" + (f" ({alias})" if alias else "")
    settings = state.profiles.get(profile, {})

    def verdict(blocked: bool, summary: str) -> FirewallVerdict:
        return FirewallVerdict(blocked, profile, alias, summary, fixable=blocked)

    if settings.get("enabled", "True") == "False":
        return verdict(False, f"Windows Firewall is off on {where}")
    wanted = (("TCP", port), ("UDP", MDNS_PORT))
    for protocol, number in wanted:
        block = next(
            (
                r
                for r in state.rules
                if r.action == "Block" and r.applies(profile, protocol, number)
            ),
            None,
        )
        if block is not None:
            return verdict(
                True,
                f"a firewall rule ({block.name}) blocks Sysboy on {where}; "
                "it is left when the firewall prompt is cancelled",
            )
    if settings.get("allowInboundRules") == "False":
        return verdict(True, f"Windows Firewall blocks all incoming connections on {where}")
    if settings.get("inbound") == "Allow":
        return verdict(False, f"Windows Firewall lets meters in on {where}")
    allowed = {
        protocol: any(
            r.action == "Allow" and r.applies(profile, protocol, number) for r in state.rules
        )
        for protocol, number in wanted
    }
    if all(allowed.values()):
        return verdict(False, f"Windows Firewall lets meters in on {where}")
    if allowed["TCP"]:
        return verdict(
            True,
            f"Windows Firewall blocks discovery (mDNS) on {where}: meters need the PC's address",
        )
    return verdict(True, f"Windows Firewall blocks meters on {where}: no rule lets Sysboy in")


def verdict(text: str, port: int) -> FirewallVerdict | None:
    """The verdict from the query's output, or None when it cannot be read."""
    try:
        state = parse_state(text)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("cannot read the firewall's answer (%s): %.200r", exc, text)
        return None
    return _one_network(state, port)


def netsh_verdict(
    profile_text: str, rules_text: str, programs: Sequence[str], port: int
) -> FirewallVerdict | None:
    """The verdict from netsh's English output, or None when it cannot be read."""
    active = netsh.profiles(profile_text)
    found = netsh.rules(rules_text, programs)
    if active is None or found is None:
        log.warning("cannot read netsh's answer (not English?): %.200r", profile_text)
        return None
    # netsh names the active profiles but not the networks they belong to
    networks = [{"alias": "", "category": name} for name in active]
    return _one_network(
        state_from({"networks": networks, "profiles": list(active.values()), "rules": found}),
        port,
    )


def app_programs(executable: str | None = None) -> list[str]:
    """This app's program files: the running one and its twin (sysboy/sysboy-cli, python/w)."""
    path = Path(executable or sys.executable)
    twins = {
        "sysboy.exe": "sysboy-cli.exe",
        "sysboy-cli.exe": "sysboy.exe",
        "python.exe": "pythonw.exe",
        "pythonw.exe": "python.exe",
    }
    found = [str(path)]
    twin = twins.get(path.name.lower())
    if twin is not None and path.with_name(twin).is_file():
        found.append(str(path.with_name(twin)))
    return found


class WindowsFirewall:
    """Asks PowerShell (no admin) and, when the user chooses to, runs the fix elevated."""

    def __init__(self, programs: Sequence[str] | None = None) -> None:
        self.programs = list(programs or app_programs())
        self.last: FirewallVerdict | None = None

    def check(self, port: int) -> FirewallVerdict | None:
        self.last = self._ask_powershell(port)
        if self.last is None:  # PowerShell may be barred by policy; netsh never is
            self.last = self._ask_netsh(port)
        return self.last

    def _ask_netsh(self, port: int) -> FirewallVerdict | None:
        answers = [
            _run([netsh_exe(), *command])
            for command in (netsh.PROFILE_COMMAND, netsh.RULES_COMMAND)
        ]
        if answers[0] is None or answers[1] is None:
            return None
        return netsh_verdict(answers[0], answers[1], self.programs, port)

    def _ask_powershell(self, port: int) -> FirewallVerdict | None:
        try:
            # -EncodedCommand, not a script on stdin: there PowerShell runs a statement
            # that spans lines only once an empty line follows it
            done = subprocess.run(
                [powershell(), *encoded_command(query_script(self.programs)).split(" ")],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=QUERY_TIMEOUT_S,
                check=False,
                # no console window flashes up from the windowed app
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("cannot ask PowerShell about the firewall: %s", exc)
            return None
        return verdict(done.stdout, port)

    def allow(self, port: int) -> bool:
        profile = self.last.profile if self.last is not None and self.last.profile else "Any"
        parameters = encoded_command(allow_script(self.programs, port, profile))
        log.info("asking to let meters in (%s networks, port %d, UDP %d)", profile, port, MDNS_PORT)
        return shell_execute_elevated(powershell(), parameters)


def netsh_exe() -> str:
    """netsh by full path, as PowerShell is."""
    root = os.environ.get("SYSTEMROOT", r"C:\Windows")
    return rf"{root}\System32\netsh.exe"


def _console_text(data: bytes) -> str:
    # netsh writes in the console's OEM codepage ("oem" exists only on Windows)
    for codec in ("oem", "utf-8"):
        try:
            return data.decode(codec, "replace")
        except LookupError:
            continue
    return data.decode("latin-1")


def _run(command: list[str]) -> str | None:
    """A program's output, or None when it cannot run or fails."""
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=QUERY_TIMEOUT_S,
            check=False,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("cannot run %s: %s", command[0], exc)
        return None
    if done.returncode != 0:
        log.warning("%s failed (%d): %.200r", command[0], done.returncode, done.stdout)
        return None
    return _console_text(done.stdout)


def shell_execute_elevated(program: str, parameters: str) -> bool:
    """Run `program` elevated (the UAC prompt); False if it could not even be asked."""
    if sys.platform != "win32":  # also tells the type checker which API follows
        return False
    import ctypes
    from ctypes import wintypes

    shell32 = ctypes.WinDLL("shell32", use_last_error=True)
    shell32.ShellExecuteW.argtypes = [
        wintypes.HWND,
        wintypes.LPCWSTR,
        wintypes.LPCWSTR,
        wintypes.LPCWSTR,
        wintypes.LPCWSTR,
        ctypes.c_int,
    ]
    shell32.ShellExecuteW.restype = wintypes.HINSTANCE
    result = shell32.ShellExecuteW(None, "runas", program, parameters, None, SW_HIDE)
    # above 32 means started; the user's "No" at the prompt is ERROR_CANCELLED
    started = int(result or 0) > 32
    if not started:
        log.warning("the firewall fix did not run (ShellExecute returned %s)", result)
    return started
