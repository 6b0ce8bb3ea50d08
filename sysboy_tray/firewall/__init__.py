"""Whether the PC's firewall lets meters in, and the one place that picks how to ask.

A meter reaches the app on its TCP port and finds it with mDNS (UDP 5353). Windows
Firewall blocks both on a network it calls Public (new Wi-Fi networks on Windows 11)
unless a rule lets the program in, and a block rule left by a cancelled prompt beats
any allow rule. `firewall_for()` is the only code that chooses: the Windows check on
Windows, none elsewhere (Linux desktops rarely filter inbound traffic by default).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

MDNS_PORT = 5353
# networks change (another Wi-Fi, a profile switched in Settings): look again now and then
RECHECK_S = 600.0
# after the fix was started: the user answers UAC, then the rules appear
AFTER_ALLOW_S = (5.0, 15.0, 30.0, 60.0)


@dataclass(frozen=True)
class FirewallVerdict:
    """What the firewall does to meters on the current network."""

    blocked: bool
    # "Public", "Private" or "Domain": how the OS classed the network; "" when unknown
    profile: str
    network: str
    # one sentence a user understands
    summary: str
    # the fix can be offered (Windows: the elevated command)
    fixable: bool = False


class Firewall(Protocol):
    """Looks at the firewall without admin rights, and offers the one fix."""

    def check(self, port: int) -> FirewallVerdict | None:
        """The verdict for `port` and mDNS, or None when it cannot be told; may block."""
        ...

    def allow(self, port: int) -> bool:
        """Ask the user (UAC) to let meters in on this network; False if not even asked."""
        ...


class NoFirewallCheck:
    """A platform where the app does not look at the firewall."""

    def check(self, port: int) -> FirewallVerdict | None:
        return None

    def allow(self, port: int) -> bool:
        return False


def firewall_for(platform: str = sys.platform) -> Firewall:
    """The firewall check for this platform: the one place that chooses."""
    if platform == "win32":
        from sysboy_tray.firewall.windows import WindowsFirewall

        return WindowsFirewall()
    return NoFirewallCheck()


class FirewallWatch:
    """Checks the firewall on a thread of its own: at start, now and then, and on request.

    `on_change` is called (on that thread) whenever the verdict changes.
    """

    def __init__(
        self, firewall: Firewall, port: Callable[[], int], on_change: Callable[[], None]
    ) -> None:
        self.firewall = firewall
        self.verdict: FirewallVerdict | None = None
        self._port = port
        self._on_change = on_change
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._soon: list[float] = []
        self._thread = threading.Thread(target=self._run, name="sysboy-firewall", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def allow(self) -> bool:
        """Start the fix (the UAC prompt); look again as the user answers it."""
        started = self.firewall.allow(self._port())
        if started:
            self._soon = list(AFTER_ALLOW_S)
            self._wake.set()
        return started

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                verdict = self.firewall.check(self._port())
            except Exception:  # a broken check must not end the app, nor this thread
                log.exception("checking the firewall failed")
                verdict = None
            if verdict != self.verdict:
                self.verdict = verdict
                if verdict is not None and verdict.blocked:
                    log.warning("%s", verdict.summary)
                elif verdict is not None:
                    log.info("%s", verdict.summary)
                self._on_change()
            self._wake.clear()
            wait = self._soon.pop(0) if self._soon else RECHECK_S
            self._wake.wait(wait)
