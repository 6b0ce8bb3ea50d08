"""Windows Firewall read through netsh, for PCs where PowerShell is not allowed to run.

netsh's text is translated on Windows in other languages; only the English output is
read here, and anything else gives no verdict rather than a wrong one. What it gives
is turned into the same `FirewallState` the PowerShell query gives.
"""

from __future__ import annotations

import ntpath
import os
import re
from collections.abc import Sequence

PROFILE_COMMAND = ["advfirewall", "show", "currentprofile"]
RULES_COMMAND = ["advfirewall", "firewall", "show", "rule", "name=all", "dir=in", "verbose"]
_PROFILE_HEADER = re.compile(r"^(Domain|Private|Public) Profile Settings:\s*$", re.MULTILINE)
_SETTING = re.compile(r"^([A-Za-z][A-Za-z ]*?)(?::)?\s{2,}(.*?)\s*$")


def _fields(block: str) -> dict[str, str]:
    """`Key:   value` lines; a value may hold colons of its own (C:\\...)."""
    found: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith("-"):
            found.setdefault(key.strip(), value.strip())
    return found


def profiles(text: str) -> dict[str, dict[str, str]] | None:
    """The active profiles' settings from `netsh advfirewall show currentprofile`.

    None when the text is not netsh's English output.
    """
    headers = list(_PROFILE_HEADER.finditer(text))
    if not headers:
        return None
    found: dict[str, dict[str, str]] = {}
    for number, header in enumerate(headers):
        end = headers[number + 1].start() if number + 1 < len(headers) else len(text)
        settings: dict[str, str] = {}
        for line in text[header.end() : end].splitlines():
            match = _SETTING.match(line)
            if match:
                settings[match.group(1).strip()] = match.group(2)
        if "State" not in settings:
            return None
        policy = settings.get("Firewall Policy", "")
        inbound = policy.split(",", 1)[0]
        found[header.group(1)] = {
            "name": header.group(1),
            "enabled": "True" if settings["State"].upper() == "ON" else "False",
            "inbound": "Allow" if inbound == "AllowInbound" else "Block",
            # "BlockInboundAlways": Block all incoming connections, even allowed apps
            "allowInboundRules": "False" if inbound == "BlockInboundAlways" else "True",
        }
    return found


def _same_program(path: str, programs: Sequence[str]) -> bool:
    expanded = ntpath.normcase(os.path.expandvars(path))
    return any(ntpath.normcase(p) == expanded for p in programs)


def rules(text: str, programs: Sequence[str]) -> list[dict[str, str | list[str]]] | None:
    """This app's inbound rules from `netsh advfirewall firewall show rule ... verbose`.

    None when the text is not netsh's English output.
    """
    if "Rule Name:" not in text and not text.strip().startswith("No rules match"):
        return None
    found: list[dict[str, str | list[str]]] = []
    for block in re.split(r"^(?=Rule Name:)", text, flags=re.MULTILINE):
        if not block.startswith("Rule Name:"):
            continue
        fields = _fields(block)
        program = fields.get("Program", "")
        if not program or not _same_program(program, programs):
            continue
        profile = fields.get("Profiles", "Any")
        found.append(
            {
                "name": fields.get("Rule Name", ""),
                "enabled": "True" if fields.get("Enabled") == "Yes" else "False",
                "action": fields.get("Action", ""),
                "profile": ", ".join(p.strip() for p in profile.split(",")),
                "protocol": fields.get("Protocol", "Any"),
                "localPort": [p.strip() for p in fields.get("LocalPort", "Any").split(",")],
                "program": program,
            }
        )
    return found
