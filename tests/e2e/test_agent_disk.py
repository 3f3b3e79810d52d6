"""VMs that boot from a disk, through a real agent: VM.create names a disk image of the agent's
images directory (raw, or qcow2 as VDSM's 'cow') and no kernel; SeaBIOS boots it (SYSLINUX's
banner on the serial console shows the guest came from the disk), the guest reaches its ready
marker, and a NIC hot plug and unplug work on it.  A drive named by path is refused unstarted."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from devtools import guest
from devtools.agent_proc import AgentClient


@pytest.fixture(scope="module")
def disks() -> Path:
    """The tiny guest's boot disks (raw and qcow2) in the agents' images directory."""
    return guest.ensure_disk_built().parent


@pytest.fixture
async def vm_id(libvirt_conn: libvirt.virConnect) -> AsyncIterator[str]:
    vm_id = str(uuid.uuid4())
    yield vm_id
    with contextlib.suppress(libvirt.libvirtError):
        libvirt_conn.lookupByUUIDString(vm_id).destroy()


@pytest.mark.parametrize(("image", "fmt", "driver"), [(guest.DISK, "raw", "raw"), (guest.DISK_QCOW2, "cow", "qcow2")])
async def test_a_vm_boots_from_its_disk_and_takes_a_hot_plugged_nic(
    agent: AgentClient,
    libvirt_conn: libvirt.virConnect,
    consoles: Path,
    bridge: str,
    disks: Path,
    vm_id: str,
    image: str,
    fmt: str,
    driver: str,
) -> None:
    console = guest.console_of(vm_id)
    created = await agent.ok("VM.create", **guest.disk_spec(f"hpt-disk-{fmt}", vm_id, image, fmt).to_params())
    assert created["status"] == "Up"
    live = etree.fromstring(libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0))
    assert live.find("os/kernel") is None  # no direct kernel boot
    disk = live.find("devices/disk[@device='disk']")
    assert disk is not None
    assert disk.find("source").get("file") == str((disks / image).resolve())
    assert (disk.find("driver").get("type"), disk.find("target").get("bus")) == (driver, "virtio")
    assert disk.find("boot").get("order") == "1"

    await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)
    text = console.read_text(errors="replace")
    assert guest.DISK_BANNER in text.split(guest.READY_MARKER)[0]  # the bootloader on the disk ran first

    mac = "52:54:00:ae:00:01" if fmt == "raw" else "52:54:00:ae:00:02"
    nic = {"type": "interface", "device": "bridge", "network": bridge, "macAddr": mac, "nicModel": "pv", "id": "d1"}
    seen = console.stat().st_size
    placed = (await agent.ok("VM.hotplugNic", vmId=vm_id, nic=nic))["nic"]
    line = await asyncio.to_thread(guest.wait_for_console, console, "NETDEV-ADDED", 60.0, seen)
    assert line.endswith(mac)
    seen = console.stat().st_size
    await agent.ok("VM.hotunplugNic", vmId=vm_id, nic={"alias": placed["alias"]})
    await asyncio.to_thread(guest.wait_for_console, console, "NETDEV-REMOVED", 60.0, seen)


@pytest.mark.parametrize(
    ("drive", "words"),
    [
        ({"format": "raw", "path": "/etc/shadow"}, "drives[0].path: the agent takes no file system path"),
        ({"format": "raw", "image": "../guest/tiny-disk.img"}, "drives[0].image: expected a file name"),
        ({"format": "raw", "image": "no-such-disk.img"}, "no image named 'no-such-disk.img'"),
        ({"format": "cow", "image": guest.DISK}, f"image {guest.DISK!r} is not a qcow2 image"),
    ],
    ids=["a path", "a relative path", "a missing image", "raw called qcow2"],
)
async def test_a_drive_named_by_path_or_wrongly_is_refused_unstarted(
    agent: AgentClient, disks: Path, vm_id: str, drive: dict[str, str], words: str
) -> None:
    params = {"vmId": vm_id, "vmName": "hpt-disk-refused", "drives": [{"bootOrder": 1, **drive}]}
    refused = await agent.error("VM.create", **params)
    assert refused.code == -32602 and words in refused.message, refused
    assert vm_id not in {vm["vmId"] for vm in await agent.ok("Host.getAllVmStats")}
