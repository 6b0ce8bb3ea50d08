"""Run a list of named checks, print each one's result and a summary line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from typing import Any


def run_checks(
    checks: Sequence[tuple[str, Callable[[], Any]]],
    failure: type[Exception],
    title: str,
) -> int:
    """Run every check (one that raises `failure`, a timeout or an OSError fails, the rest
    still run); 1 when any failed, else 0."""
    failed = 0
    for name, check in checks:
        try:
            result = check()
        except (failure, subprocess.TimeoutExpired, OSError) as exc:
            failed += 1
            print(f"FAIL {name}: {exc}", flush=True)
            continue
        if isinstance(result, dict):
            print(f"ok   {name}")
            for key, value in result.items():
                print(f"       {key}: {value}")
        else:
            print(f"ok   {name}: {result}", flush=True)
    print(f"{title}: {len(checks) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0
