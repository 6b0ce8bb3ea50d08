"""The release workflow's Windows checks, run here against the app from source.

On Windows they run against the built exe (release.yml); here the same script checks
`python -m sysboy_tray`, so a mistake in the script shows before a release does. The
registry check says it is skipped, the tray check is left out (it needs a desktop).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.rdatatype

from tests.conftest import TIMEOUT_FACTOR, scaled

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import windows_checks  # noqa: E402


def test_the_query_is_what_the_firmware_asks() -> None:
    query = dns.message.from_wire(windows_checks.ptr_query(4242))
    assert query.id == 4242 and not query.flags  # a plain query, no recursion wanted
    (question,) = query.question
    assert str(question.name) == "_sysboy._tcp.local."
    assert question.rdtype == dns.rdatatype.PTR


def test_the_checks_pass_against_the_app_from_source() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "windows_checks.py"), "--from-source", "--no-tray"],
        capture_output=True,
        text=True,
        timeout=scaled(180),
        env={**os.environ, "SYSBOY_TIMEOUT_FACTOR": str(TIMEOUT_FACTOR)},
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "ok   serve with no output" in out
    assert "closed 3 query sockets unread, answered again" in out
    assert "ok   metrics > file: net " in out
    assert "ok   start at login: skipped (no registry here)" in out
    assert "windows checks: 3 passed, 0 failed" in out
