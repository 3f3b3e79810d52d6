"""Disks of a VM (oVirt's disk attachments): attach and detach, while the VM is down.

A disk here is an image file of the hosts' images directory, named by its file name; it is sent
to the host at start as a VDSM drive (``hosts_calls.drive_spec``).  No disk hot plug.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from engine.domain.model import Disk
from engine.domain.rules import check, refuse_attach_disk, refuse_detach_disk
from engine.services.context import Context

# oVirt's audit log types.
ATTACHED, ATTACH_FAILED, DETACHED, DETACH_FAILED = 2016, 2017, 2018, 2019


@dataclass(frozen=True)
class DiskFields:
    """A disk attachment as a request gives it."""

    name: str = ""  # the image's file name
    format: str = "raw"
    interface: str = "virtio"
    bootable: bool = False
    read_only: bool = False


async def attach_disk(ctx: Context, user: str, vm_id: str, fields: DiskFields) -> Disk:
    what = f"attach disk {fields.name} to"
    async with ctx.failure_audited(user, ATTACH_FAILED, what, vm_id) as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        disk = Disk(str(uuid.uuid4()), vm.id, fields.name, fields.format, fields.interface, fields.bootable,
                    fields.read_only)  # fmt: skip
        check(refuse_attach_disk(vm, await repo.disks(vm.id), disk))
        await repo.add_disk(disk)
        boots = " (bootable)" if disk.bootable else ""
        await repo.audit(ATTACHED, "normal", f"Disk {disk.name}{boots} was attached to VM {vm.name}.", user, vm)
    return disk


async def detach_disk(ctx: Context, user: str, vm_id: str, disk_id: str) -> None:
    """oVirt's DELETE of a disk attachment: the disk leaves the VM (the image file stays on the hosts)."""
    audited = ctx.failure_audited(user, DETACH_FAILED, f"detach disk {disk_id} from", vm_id)
    async with audited as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        disk = await repo.disk(vm.id, disk_id)
        check(refuse_detach_disk(vm))
        await repo.delete_disk(disk.id)
        await repo.audit(DETACHED, "normal", f"Disk {disk.name} was detached from VM {vm.name}.", user, vm)
