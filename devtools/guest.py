"""The tiny Linux guest: build it once (scripts/build-guest.sh) and describe a VM that boots it,
by direct kernel boot or, from the same kernel and initramfs on a bootable disk image
(scripts/build-guest-disk.sh: FAT + SYSLINUX, built on demand), from a disk."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from devtools import paths
from shared_schema.vm import DriveSpec, VmSpec
from vdsm_agent import images
from vdsm_agent.domain_xml import build_domain, to_string

PROJECT = paths.PROJECT
# In the checkout's state directory: QEMU (libvirt-qemu) cannot enter a private checkout.
GUEST_DIR = paths.guest_dir()
READY_MARKER = "HOTPLUG-GUEST-READY"
CMDLINE = "console=ttyS0 panic=-1 quiet"


def ensure_built(directory: Path = GUEST_DIR) -> Path:
    paths.ensure()
    subprocess.run(["bash", str(PROJECT / "scripts" / "build-guest.sh"), str(directory)], check=True)
    return directory


KERNEL, INITRD = "vmlinuz", "initrd.img"  # image names: the agents' images directory is GUEST_DIR
DISK = "tiny-disk.img"  # the guest on a raw disk that SeaBIOS boots (SYSLINUX loads the same kernel)
DISK_QCOW2 = "tiny-disk.qcow2"  # the same disk in qcow2 (VDSM's format 'cow')
DISK_BANNER = "SYSLINUX"  # what the console shows first when the guest came from the disk


def ensure_disk_built(directory: Path = GUEST_DIR) -> Path:
    """The tiny guest's boot disk (raw; and DISK_QCOW2 beside it), built once from its kernel and initramfs."""
    ensure_built(directory)
    subprocess.run(["bash", str(PROJECT / "scripts" / "build-guest-disk.sh"), str(directory)], check=True)
    return directory / DISK


def console_of(vm_id: str) -> Path:
    """Where an agent of a run writes VM ``vm_id``'s serial console (its log directory)."""
    return images.console_log(paths.consoles_dir(), vm_id)


def agent_env() -> dict[str, str]:
    """The settings that make an agent of a run find the tiny guest and write consoles here."""
    return {"VDSM_AGENT_IMAGES_DIR": str(GUEST_DIR), "VDSM_AGENT_LOG_DIR": str(paths.consoles_dir())}


def spec(name: str, vm_id: str | None = None) -> VmSpec:
    return VmSpec(
        vm_id=vm_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.hotplug-nic")),
        name=name,
        memory_mib=128,
        kernel=KERNEL,
        initrd=INITRD,
        cmdline=CMDLINE,
    )


def disk_spec(name: str, vm_id: str | None = None, image: str = DISK, fmt: str = "raw") -> VmSpec:
    """A VM that boots the tiny guest from disk ``image`` of the images directory (no kernel given)."""
    return VmSpec(
        vm_id=vm_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.hotplug-nic")),
        name=name,
        memory_mib=128,
        drives=(DriveSpec(image, fmt, boot_order=1),),
    )


def domain_xml(vm: VmSpec) -> str:
    """The domain an agent of a run would define for ``vm``: for tests that start the guest
    in libvirt themselves (the canaries, the raw-libvirt side of the benchmarks)."""
    console = str(console_of(vm.vm_id))
    return to_string(build_domain(vm, str(GUEST_DIR / KERNEL), str(GUEST_DIR / INITRD), console))


def engine_vm(name: str, cluster_id: str, os_type: str = "rhel_6x64") -> dict[str, Any]:
    """The body of ``POST /vms`` for an engine VM that boots the tiny guest (images by name)."""
    return {
        "name": name,
        "cluster": {"id": cluster_id},
        "memory": 128 * 1024 * 1024,
        "os": {"type": os_type, "kernel": KERNEL, "initrd": INITRD, "cmdline": CMDLINE},
    }


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


if __name__ == "__main__":  # make guest; `python -m devtools.guest disk` builds the boot disk too
    import sys

    if sys.argv[1:] == ["disk"]:
        ensure_disk_built()
    else:
        ensure_built()
