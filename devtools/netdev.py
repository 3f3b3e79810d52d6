"""Host network devices the demo and the tests use: plain Linux bridges with no IP address."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def exists(name: str) -> bool:
    return _ip("link", "show", "dev", name).returncode == 0


def ensure_bridge(name: str) -> None:
    """Create the bridge unless it exists, and bring it up.  Never given an address."""
    if not exists(name):
        done = _ip("link", "add", name, "type", "bridge")
        if done.returncode != 0 and not exists(name):  # another process may have won the race
            raise RuntimeError(f"cannot create bridge {name}: {done.stderr.strip()}")
    _ip("link", "set", name, "up")


def master(name: str) -> str:
    """The bridge ``name`` is a port of, or ''."""
    link = Path(f"/sys/class/net/{name}/master")
    return link.resolve().name if link.exists() else ""


def delete(name: str) -> None:
    if exists(name):
        _ip("link", "del", name)
