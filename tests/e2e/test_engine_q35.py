"""A q35 VM through the REST API on the real stack: oVirt's bios.type q35_sea_bios starts the tiny
guest as q35 (PCIe), the engine applies no i440fx slot budget to it, and hot plug through the API
takes the free PCIe root ports the agent gave it (pcie_hotplug_ports, 16 by default) until none is
left — then activate fails with the host's reason and nothing changes; a deactivate frees one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import libvirt
import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest
from lxml import etree

from devtools import guest
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup, boot_vm
from tests.e2e.test_engine_story import db_nics, live_macs
from vdsm_agent import pcie

PORTS = 16  # the session agent's pcie_hotplug_ports: the default, as oVirt's


@pytest.fixture(scope="module")
async def q35_vm(engine_setup: EngineSetup) -> AsyncIterator[dict[str, Any]]:
    vm = await boot_vm(engine_setup, "q35-vm", bios={"type": "q35_sea_bios"})
    yield vm
    with contextlib.suppress(AssertionError):
        await engine_setup.api.ok("POST", f"/vms/{vm['id']}/stop")


async def test_a_q35_vm_hot_plugs_until_its_root_ports_run_out(
    engine_setup: EngineSetup, q35_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    s, vm_id, console = engine_setup, q35_vm["id"], q35_vm["console"]
    shown = await s.api.ok("GET", f"/vms/{vm_id}")
    assert shown["bios"] == {"type": "q35_sea_bios"} and "custom_emulated_machine" not in shown
    live = libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0)
    assert "q35" in etree.fromstring(live).find("os/type").get("machine", "")
    assert pcie.free_root_ports(live)[0] == PORTS

    body = {"vnic_profile": {"id": s.profile_id}, "plugged": False}
    nics = [await s.api.ok("POST", f"/vms/{vm_id}/nics", {"name": f"q{i:02d}", **body}) for i in range(PORTS + 1)]
    for nic in nics[:PORTS]:
        done = await s.api.ok("POST", f"/vms/{vm_id}/nics/{nic['id']}/activate")
        assert done["nic"]["plugged"] and int(done["nic"]["address"]["bus"], 16) > 0  # behind a root port
    assert pcie.free_root_ports(libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0))[0] == 0
    assert len(live_macs(libvirt_conn, vm_id)) == PORTS

    last = nics[PORTS]
    before, live_before = await db_nics(s, vm_id), libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0)
    status, fault = await s.api.fault("POST", f"/vms/{vm_id}/nics/{last['id']}/activate")
    assert status == 502 and fault["code"] == "ACTIVATE_NIC_FAILED" and fault["data"]["hostCode"] == 49
    assert fault["detail"] == (
        f"Failed to hotplug NIC: no free PCIe root port left for hot plug: the VM was started with {PORTS} "
        "(pcie_hotplug_ports); unplug a device to free one"
    )
    assert await db_nics(s, vm_id) == before  # unplugged, no address: as it was
    assert libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0) == live_before
    (event, *_) = (await s.api.ok("GET", f"/events?vm={vm_id}"))["event"]
    assert event["code"] == 1013 and "no free PCIe root port left" in event["description"]

    first = nics[0]
    await asyncio.to_thread(guest.wait_for_console, console, first["mac"]["address"], 60.0)  # the guest set it up
    off = await s.api.ok("POST", f"/vms/{vm_id}/nics/{first['id']}/deactivate")
    assert not off["nic"]["plugged"] and "address" not in off["nic"]
    again = await s.api.ok("POST", f"/vms/{vm_id}/nics/{last['id']}/activate")
    assert again["nic"]["plugged"] and last["mac"]["address"] in live_macs(libvirt_conn, vm_id)
    assert first["mac"]["address"] not in live_macs(libvirt_conn, vm_id)


async def test_the_ovirt_sdk_makes_a_q35_vm_and_hears_why_ovmf_is_refused(engine_setup: EngineSetup) -> None:
    await asyncio.to_thread(_sdk_q35, engine_setup)


def _sdk_q35(engine_setup: EngineSetup) -> None:
    connection = sdk.Connection(url=f"{engine_setup.api.base}/ovirt-engine/api", username="admin@internal",
                                password=ADMIN_PASSWORD)  # fmt: skip
    try:
        vms = connection.system_service().vms_service()
        os_ = types.OperatingSystem(type="rhel_6x64", kernel=guest.KERNEL, initrd=guest.INITRD, cmdline=guest.CMDLINE)
        made = vms.add(types.Vm(name="sdk-q35", cluster=types.Cluster(id=engine_setup.cluster_id), os=os_,
                                memory=128 * 2**20, bios=types.Bios(type=types.BiosType.Q35_SEA_BIOS)))  # fmt: skip
        assert made.bios.type == types.BiosType.Q35_SEA_BIOS
        assert vms.vm_service(made.id).get().bios.type == types.BiosType.Q35_SEA_BIOS
        custom = vms.add(types.Vm(name="sdk-q35-custom", cluster=types.Cluster(id=engine_setup.cluster_id), os=os_,
                                  custom_emulated_machine="pc-q35-7.2"))  # fmt: skip
        assert (custom.bios.type, custom.custom_emulated_machine) == (types.BiosType.Q35_SEA_BIOS, "pc-q35-7.2")
        with pytest.raises(sdk.Error, match="needs UEFI firmware \\(OVMF\\), which the hosts of this engine do not"):
            vms.add(types.Vm(name="sdk-ovmf", cluster=types.Cluster(id=engine_setup.cluster_id), os=os_,
                             bios=types.Bios(type=types.BiosType.Q35_OVMF)))  # fmt: skip
        for vm in (made, custom):
            vms.vm_service(vm.id).remove()
    finally:
        connection.close()
