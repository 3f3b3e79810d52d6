"""A VM with a disk, made through the REST API and oVirt's SDK on the real stack: no kernel, a
bootable disk attachment naming the tiny guest's disk image (raw, and qcow2 — VDSM's 'cow'); it
boots from the disk (SYSLINUX's banner, then the ready marker) and takes a NIC hot plug."""

from __future__ import annotations

import asyncio
import contextlib

import libvirt
import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest
from lxml import etree

from devtools import guest
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup
from tests.e2e.test_engine_story import live_macs


def _disk_vm_with_the_sdk(s: EngineSetup, name: str) -> str:
    """oVirt's way: a VM, then a bootable disk attachment (its disk inline: the image and its format)."""
    connection = sdk.Connection(url=f"{s.api.base}/ovirt-engine/api", username="admin@internal",
                                password=ADMIN_PASSWORD)  # fmt: skip
    try:
        vms = connection.system_service().vms_service()
        vm = vms.add(types.Vm(name=name, cluster=types.Cluster(id=s.cluster_id), memory=128 * 2**20,
                              os=types.OperatingSystem(type="rhel_6x64")))  # fmt: skip
        attachment = vms.vm_service(vm.id).disk_attachments_service().add(types.DiskAttachment(
            disk=types.Disk(name=guest.DISK_QCOW2, format=types.DiskFormat.COW), interface=types.DiskInterface.VIRTIO,
            bootable=True, active=True))  # fmt: skip
        assert (attachment.bootable, attachment.disk.name, attachment.disk.format) == (
            True,
            guest.DISK_QCOW2,
            types.DiskFormat.COW,
        )
        (listed,) = vms.vm_service(vm.id).disk_attachments_service().list()
        assert listed.id == attachment.id and listed.interface == types.DiskInterface.VIRTIO
        return str(vm.id)
    finally:
        connection.close()


@pytest.mark.parametrize("fmt", ["raw", "cow"])
async def test_a_vm_boots_from_its_disk_and_takes_a_nic_hot_plug(
    engine_setup: EngineSetup, libvirt_conn: libvirt.virConnect, fmt: str
) -> None:
    s = engine_setup
    await asyncio.to_thread(guest.ensure_disk_built)
    if fmt == "raw":  # JSON, the REST way
        vm = await s.api.ok("POST", "/vms", {"name": "disk-raw", "cluster": {"id": s.cluster_id},
                                             "os": {"type": "rhel_6x64"}, "memory": 128 * 2**20})  # fmt: skip
        vm_id = vm["id"]
        body = {"bootable": True, "interface": "virtio", "disk": {"name": guest.DISK, "format": "raw"}}
        await s.api.ok("POST", f"/vms/{vm_id}/diskattachments", body)
    else:  # the SDK (XML)
        vm_id = await asyncio.to_thread(_disk_vm_with_the_sdk, s, "disk-cow")
    console = guest.console_of(vm_id)
    console.unlink(missing_ok=True)
    placement = {"vm": {"placement_policy": {"hosts": {"host": [{"id": s.host_id}]}}}}
    try:
        await s.api.ok("POST", f"/vms/{vm_id}/start", placement)
        live = etree.fromstring(libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0))
        assert live.find("os/kernel") is None  # no direct kernel boot: from the disk
        (disk,) = live.xpath("devices/disk[@device='disk']")
        assert disk.find("source").get("file").endswith(guest.DISK if fmt == "raw" else guest.DISK_QCOW2)
        assert disk.find("driver").get("type") == ("raw" if fmt == "raw" else "qcow2")
        assert disk.find("target").get("bus") == "virtio" and disk.find("boot").get("order") == "1"
        await asyncio.to_thread(guest.wait_for_console, console, guest.DISK_BANNER, 120.0)
        await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)

        nic = await s.api.ok("POST", f"/vms/{vm_id}/nics", {"name": "nic1", "vnic_profile": {"id": s.profile_id}})
        assert nic["plugged"] and nic["mac"]["address"] in live_macs(libvirt_conn, vm_id)
        await asyncio.to_thread(guest.wait_for_console, console, nic["mac"]["address"], 60.0)  # the guest has it
        (shown,) = (await s.api.ok("GET", f"/vms/{vm_id}/diskattachments"))["disk_attachment"]
        assert shown["bootable"] and shown["disk"]["format"] == fmt
        status, fault = await s.api.fault("DELETE", f"/vms/{vm_id}/diskattachments/{shown['id']}")
        assert status == 409 and "does not hot-plug disks" in fault["detail"]
    finally:
        with contextlib.suppress(AssertionError):
            await s.api.ok("POST", f"/vms/{vm_id}/stop")
