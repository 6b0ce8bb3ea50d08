"""A private network namespace for tests that must not meet other programs on this host.

One veth pair inside it carries multicast, so real mDNS works there and nowhere else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

ADDRESS = "10.77.0.1"


def _ip(*args: str) -> bool:
    found = shutil.which("ip")
    if found is None:
        return False
    result = subprocess.run([found, *args], capture_output=True, check=False)
    return result.returncode == 0


@contextlib.contextmanager
def private_network() -> Iterator[list[str] | None]:
    """Yield the command prefix that runs a program inside a fresh namespace.

    Yields None when namespaces cannot be made here (not root, no iproute2).
    """
    name = f"sysboy-test-{os.getpid()}"
    made = os.geteuid() == 0 and _ip("netns", "add", name)
    try:
        if made:
            made = all(
                _ip("-n", name, *args)
                for args in (
                    ("link", "set", "lo", "up"),
                    ("link", "add", "v0", "type", "veth", "peer", "name", "v1"),
                    ("addr", "add", f"{ADDRESS}/24", "dev", "v0"),
                    ("link", "set", "v0", "up"),
                    ("link", "set", "v1", "up"),
                    ("route", "add", "224.0.0.0/4", "dev", "v0"),
                )
            )
        yield ["ip", "netns", "exec", name] if made else None
    finally:
        _ip("netns", "del", name)
