"""The tiny Linux guest: build it once (scripts/build-guest.sh) and describe a VM that boots it."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from devtools import paths
from shared_schema.vm import VmSpec

PROJECT = paths.PROJECT
# In the checkout's state directory: QEMU (libvirt-qemu) cannot enter a private checkout.
GUEST_DIR = paths.guest_dir()
READY_MARKER = "HOTPLUG-GUEST-READY"
CMDLINE = "console=ttyS0 panic=-1 quiet"


def ensure_built(directory: Path = GUEST_DIR) -> Path:
    paths.ensure()
    subprocess.run(["bash", str(PROJECT / "scripts" / "build-guest.sh"), str(directory)], check=True)
    return directory


def spec(name: str, console_log: Path, directory: Path = GUEST_DIR, vm_id: str | None = None) -> VmSpec:
    return VmSpec(
        vm_id=vm_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.hotplug-nic")),
        name=name,
        memory_mib=128,
        kernel=str(directory / "vmlinuz"),
        initrd=str(directory / "initrd.img"),
        cmdline=CMDLINE,
        console_log=str(console_log),
    )


def engine_vm(
    name: str, cluster_id: str, console_log: Path | None = None, os_type: str = "rhel_6x64", directory: Path = GUEST_DIR
) -> dict[str, Any]:
    """The body of ``POST /vms`` for an engine VM that boots the tiny guest."""
    body: dict[str, Any] = {
        "name": name,
        "cluster": {"id": cluster_id},
        "memory": 128 * 1024 * 1024,
        "os": {"type": os_type, "kernel": str(directory / "vmlinuz"), "initrd": str(directory / "initrd.img"),
               "cmdline": CMDLINE},
    }  # fmt: skip
    if console_log is not None:
        body["custom_properties"] = {"custom_property": [{"name": "console_log", "value": str(console_log)}]}
    return body


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


if __name__ == "__main__":  # make guest
    ensure_built()
