"""The tiny Linux guest: build it once (scripts/build-guest.sh) and describe a VM that boots it."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from shared_schema.vm import VmSpec

PROJECT = Path(__file__).resolve().parents[1]
GUEST_DIR = PROJECT / ".cache" / "guest"
READY_MARKER = "HOTPLUG-GUEST-READY"


def ensure_built(directory: Path = GUEST_DIR) -> Path:
    subprocess.run(["bash", str(PROJECT / "scripts" / "build-guest.sh"), str(directory)], check=True)
    return directory


def spec(name: str, console_log: Path, directory: Path = GUEST_DIR, vm_id: str | None = None) -> VmSpec:
    return VmSpec(
        vm_id=vm_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.hotplug-nic")),
        name=name,
        memory_mib=128,
        kernel=str(directory / "vmlinuz"),
        initrd=str(directory / "initrd.img"),
        cmdline="console=ttyS0 panic=-1 quiet",
        console_log=str(console_log),
    )


def wait_for_console(console_log: Path, text: str, timeout: float = 90.0, after: int = 0) -> str:
    """Wait until ``text`` shows in the serial log past byte ``after``; return the line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = console_log.read_bytes()[after:].decode(errors="replace")
        except FileNotFoundError:
            data = ""
        for line in data.splitlines():
            if text in line:
                return line
        time.sleep(0.1)
    raise TimeoutError(f"guest console {console_log} did not show {text!r} within {timeout:.0f} s")
