"""The PowerShell that reads Windows Firewall (no admin) and the one that fixes it (UAC).

Pure text: nothing here runs a program. The scripts go to powershell.exe as
-EncodedCommand, which needs no quoting and, unlike a script on standard input, runs a
statement that spans lines without waiting for an empty line after it. Paths are put
in single quotes, where PowerShell expands nothing.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from sysboy_tray.firewall import MDNS_PORT

RULE_GROUP = "Sysboy2000"


def powershell() -> str:
    """Windows PowerShell by full path: a powershell.exe earlier on PATH is not asked."""
    root = os.environ.get("SYSTEMROOT", r"C:\Windows")
    return rf"{root}\System32\WindowsPowerShell\v1.0\powershell.exe"


def ps_quote(text: str) -> str:
    """A PowerShell single-quoted string: nothing inside is expanded."""
    return "'" + text.replace("'", "''") + "'"


def _ps_list(items: Sequence[str]) -> str:
    return "@(" + ", ".join(ps_quote(i) for i in items) + ")"


def query_script(programs: Sequence[str]) -> str:
    """The read-only PowerShell that prints the networks, profiles and this app's rules.

    The output is UTF-8 whatever the console's codepage, so adapter names in any
    language come through.
    """
    return f"""$ErrorActionPreference = 'SilentlyContinue'
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8
$programs = {_ps_list(programs)}
$networks = @(Get-NetConnectionProfile | ForEach-Object {{
  [pscustomobject]@{{ alias = "$($_.InterfaceAlias)"; category = "$($_.NetworkCategory)" }} }})
$profiles = @(Get-NetFirewallProfile -PolicyStore ActiveStore | ForEach-Object {{
  [pscustomobject]@{{ name = "$($_.Name)"; enabled = "$($_.Enabled)";
    inbound = "$($_.DefaultInboundAction)"; allowInboundRules = "$($_.AllowInboundRules)" }} }})
$filters = @(Get-NetFirewallApplicationFilter -PolicyStore ActiveStore |
  Where-Object {{ $programs -contains [Environment]::ExpandEnvironmentVariables($_.Program) }})
$rules = @(foreach ($filter in $filters) {{
  $program = [Environment]::ExpandEnvironmentVariables($filter.Program)
  foreach ($rule in @(Get-NetFirewallRule -AssociatedNetFirewallApplicationFilter $filter)) {{
    if ("$($rule.Direction)" -ne 'Inbound') {{ continue }}
    $ports = Get-NetFirewallPortFilter -AssociatedNetFirewallRule $rule
    [pscustomobject]@{{ name = "$($rule.DisplayName)"; enabled = "$($rule.Enabled)";
      action = "$($rule.Action)"; profile = "$($rule.Profile)"; protocol = "$($ports.Protocol)";
      localPort = @($ports.LocalPort | ForEach-Object {{ "$_" }}); program = $program }} }} }})
[pscustomobject]@{{ networks = $networks; profiles = $profiles; rules = $rules }} |
  ConvertTo-Json -Depth 4 -Compress
"""


def allow_script(programs: Sequence[str], port: int, profile: str) -> str:
    """The elevated PowerShell: drop block rules for these programs, allow meters in.

    The new rules let in only the local subnet, on the app's TCP port and mDNS, for
    the kind of network the meter is on now.
    """
    lines = [
        "$ErrorActionPreference = 'Stop'",
        f"$programs = {_ps_list(programs)}",
        # rules this command made before (an older port, a moved exe) go first
        "$old = @(Get-NetFirewallRule -Group "
        f"{ps_quote(RULE_GROUP)} -ErrorAction SilentlyContinue)",
        # block rules left by a cancelled prompt beat every allow rule; each filter is
        # named, never piped: a cmdlet given no input may act on every rule
        "$filters = @(Get-NetFirewallApplicationFilter | Where-Object {"
        " $programs -contains [Environment]::ExpandEnvironmentVariables($_.Program) })",
        "foreach ($filter in $filters) {"
        " foreach ($rule in @(Get-NetFirewallRule"
        " -AssociatedNetFirewallApplicationFilter $filter)) {"
        " if (\"$($rule.Direction)\" -eq 'Inbound' -and \"$($rule.Action)\" -eq 'Block') {"
        " $old += $rule } } }",
        # each rule by its own name: a Remove-NetFirewallRule left without input may act on all
        "foreach ($rule in $old) {"
        " if ($rule.Name) { Remove-NetFirewallRule -Name $rule.Name -ErrorAction Continue } }",
        "foreach ($program in $programs) {",
    ]
    for name, protocol, local_port in (
        ("Sysboy2000 meters (TCP)", "TCP", port),
        ("Sysboy2000 discovery (mDNS)", "UDP", MDNS_PORT),
    ):
        lines.append(
            f"  New-NetFirewallRule -DisplayName {ps_quote(name)} -Group {ps_quote(RULE_GROUP)}"
            f" -Direction Inbound -Action Allow -Program $program -Protocol {protocol}"
            f" -LocalPort {int(local_port)} -RemoteAddress LocalSubnet -Profile {profile}"
            " | Out-Null"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def encoded_command(script: str) -> str:
    """PowerShell's arguments to run `script` hidden: -EncodedCommand needs no quoting."""
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return (
        "-NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden "
        f"-EncodedCommand {encoded}"
    )


def decode_command(parameters: str) -> str:
    """The script inside `encoded_command`'s arguments (for tests and the log)."""
    return base64.b64decode(parameters.rsplit(" ", 1)[1]).decode("utf-16-le")
