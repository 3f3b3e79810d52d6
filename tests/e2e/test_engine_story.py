"""The seed's whole story through the engine's REST API, on real Postgres, agent, libvirtd and guest."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import libvirt
import pytest
from lxml import etree

from devtools import guest
from tests.e2e.conftest import EngineSetup


def live_macs(conn: libvirt.virConnect, vm_id: str) -> dict[str, str]:
    """MAC -> PCI address text of the NICs in the domain's live XML (virsh dumpxml)."""
    dumped = subprocess.run(
        ["virsh", "-c", "qemu:///system", "dumpxml", vm_id], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for iface in etree.fromstring(dumped.encode()).iterfind("devices/interface"):
        a = iface.find("address")
        found[iface.find("mac").get("address")] = "{:04x}:{:02x}:{:02x}.{:x}".format(
            *(int(a.get(k), 16) for k in ("domain", "bus", "slot", "function"))
        )
    return found


def pci_text(address: dict[str, str] | None) -> str | None:
    if not address:
        return None
    return "{:04x}:{:02x}:{:02x}.{:x}".format(*(int(address[k], 16) for k in ("domain", "bus", "slot", "function")))


async def db_nics(setup: EngineSetup, vm_id: str) -> dict[str, tuple[bool, str]]:
    conn = await asyncpg.connect(setup.database_url)
    try:
        rows = await conn.fetch("SELECT name, active, address FROM vm_interface_view WHERE vm_id = $1", vm_id)
    finally:
        await conn.close()
    return {r["name"]: (r["active"], r["address"]) for r in rows}


@pytest.fixture(scope="module")
async def running_story_vm(
    engine_setup: EngineSetup, libvirt_conn: libvirt.virConnect
) -> AsyncIterator[dict[str, Any]]:
    """A rhel_6x64 VM of the engine booting the tiny guest: NIC 'nic1' active, 'nic2' added with activate = false."""
    api, s = engine_setup.api, engine_setup
    guest.ensure_built()
    vm = await api.ok("POST", "/vms", guest.engine_vm("story", s.cluster_id))
    console = guest.console_of(vm["id"])
    nic1 = await api.ok("POST", f"/vms/{vm['id']}/nics", {"name": "nic1", "vnic_profile": {"id": s.profile_id}})
    nic2 = await api.ok(
        "POST", f"/vms/{vm['id']}/nics", {"name": "nic2", "vnic_profile": {"id": s.profile_id}, "plugged": False}
    )
    assert (nic1["plugged"], nic2["plugged"]) == (True, False)  # on a down VM: the flag only
    started = await api.ok("POST", f"/vms/{vm['id']}/start")
    assert started["vm"]["status"] == "up" and started["vm"]["host"]["id"] == s.host_id
    await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)
    yield {"vm": vm, "nic1": nic1, "nic2": nic2, "console": console}
    with contextlib.suppress(AssertionError):
        await api.ok("POST", f"/vms/{vm['id']}/stop")


async def test_run_vm_sends_only_the_active_nics_and_stores_their_addresses(
    engine_setup: EngineSetup, running_story_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    api, vm_id = engine_setup.api, running_story_vm["vm"]["id"]
    live = live_macs(libvirt_conn, vm_id)
    assert running_story_vm["nic1"]["mac"]["address"] in live
    assert running_story_vm["nic2"]["mac"]["address"] not in live
    nic1 = await api.ok("GET", f"/vms/{vm_id}/nics/{running_story_vm['nic1']['id']}")
    assert pci_text(nic1["address"]) == live[nic1["mac"]["address"]]


async def test_activate_deactivate_on_the_running_vm(
    engine_setup: EngineSetup, running_story_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    api, vm_id = engine_setup.api, running_story_vm["vm"]["id"]
    nic3 = await api.ok("POST", f"/vms/{vm_id}/nics", {"name": "nic3", "vnic_profile": {"id": engine_setup.profile_id},
                                                       "interface": "virtio"})  # fmt: skip
    mac = nic3["mac"]["address"]
    assert nic3["plugged"] is True
    live = live_macs(libvirt_conn, vm_id)
    assert mac in live
    assert pci_text(nic3["address"]) == live[mac]
    assert (await db_nics(engine_setup, vm_id))["nic3"] == (True, live[mac])
    await asyncio.to_thread(guest.wait_for_console, running_story_vm["console"], mac, 30.0)

    deactivated = await api.ok("POST", f"/vms/{vm_id}/nics/{nic3['id']}/deactivate")
    assert deactivated["status"] == "complete" and deactivated["nic"]["plugged"] is False
    assert mac not in live_macs(libvirt_conn, vm_id)
    assert (await db_nics(engine_setup, vm_id))["nic3"] == (False, "")  # the address is cleared

    again = await api.ok("POST", f"/vms/{vm_id}/nics/{nic3['id']}/deactivate")  # idempotent
    assert again["nic"]["plugged"] is False

    reactivated = await api.ok("POST", f"/vms/{vm_id}/nics/{nic3['id']}/activate")
    assert reactivated["nic"]["plugged"] is True
    assert mac in live_macs(libvirt_conn, vm_id)

    # Remove is refused while plugged, allowed once deactivated (v4 style: PUT plugged=false).
    status, fault = await api.fault("DELETE", f"/vms/{vm_id}/nics/{nic3['id']}")
    assert status == 409 and fault["code"] == "CANNOT_REMOVE_PLUGGED_NIC_OF_RUNNING_VM"
    await asyncio.to_thread(guest.wait_for_console, running_story_vm["console"], mac, 30.0)
    unplugged = await api.ok("PUT", f"/vms/{vm_id}/nics/{nic3['id']}", {"plugged": False})
    assert unplugged["plugged"] is False and mac not in live_macs(libvirt_conn, vm_id)
    await api.ok("DELETE", f"/vms/{vm_id}/nics/{nic3['id']}")
    assert "nic3" not in await db_nics(engine_setup, vm_id)


async def test_a_nic_plugged_again_after_another_took_its_slot_gets_a_free_one(
    engine_setup: EngineSetup, running_story_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    """Unplug A, plug B into A's old slot, activate A again: A lands on a free slot, and the
    database's addresses are the live XML's (oVirt's BZ 1199782: a stale address collided)."""
    api, s, vm_id = engine_setup.api, engine_setup, running_story_vm["vm"]["id"]
    nics = f"/vms/{vm_id}/nics"
    body = {"vnic_profile": {"id": s.profile_id}, "interface": "e1000"}
    a = await api.ok("POST", nics, {**body, "name": "replug-a"})  # e1000: no guest driver, a quick unplug
    slot_of_a = pci_text(a["address"])
    await api.ok("POST", f"{nics}/{a['id']}/deactivate")
    b = await api.ok("POST", nics, {**body, "name": "replug-b"})  # libvirt gives it the lowest free slot: A's
    assert pci_text(b["address"]) == slot_of_a
    again = (await api.ok("POST", f"{nics}/{a['id']}/activate"))["nic"]
    assert pci_text(again["address"]) not in (None, slot_of_a)
    live = await asyncio.to_thread(live_macs, libvirt_conn, vm_id)
    stored = await db_nics(s, vm_id)
    for nic in (again, b):
        assert stored[nic["name"]] == (True, live[nic["mac"]["address"]])
    for nic in (again, b):
        await api.ok("PUT", f"{nics}/{nic['id']}", {"plugged": False})
        await api.ok("DELETE", f"{nics}/{nic['id']}")


async def test_update_and_remove_are_refused_while_plugged_into_the_running_vm(
    engine_setup: EngineSetup, running_story_vm: dict[str, Any]
) -> None:
    api, vm_id, nic1 = engine_setup.api, running_story_vm["vm"]["id"], running_story_vm["nic1"]
    status, fault = await api.fault("PUT", f"/vms/{vm_id}/nics/{nic1['id']}", {"name": "renamed"})
    assert status == 409 and fault["code"] == "CANNOT_UPDATE_PLUGGED_NIC_OF_RUNNING_VM"
    assert "deactivate it" in fault["detail"]
    status, fault = await api.fault("DELETE", f"/vms/{vm_id}/nics/{nic1['id']}")
    assert status == 409
    # An unplugged NIC of the running VM may be edited.
    nic2 = await api.ok("PUT", f"/vms/{vm_id}/nics/{running_story_vm['nic2']['id']}", {"name": "nic2-renamed"})
    assert nic2["name"] == "nic2-renamed"
    assert (await api.ok("GET", f"/vms/{vm_id}/nics/{nic1['id']}"))["name"] == "nic1"


async def test_a_plug_the_host_refuses_returns_its_reason_and_changes_nothing(
    engine_setup: EngineSetup, running_story_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    api, s, vm_id = engine_setup.api, engine_setup, running_story_vm["vm"]["id"]
    network = await api.ok(
        "POST", "/networks", {"name": "blue", "bridge": "hpt-nosuch9", "cluster": {"id": s.cluster_id}}
    )
    profile = next(
        p for p in (await api.ok("GET", "/vnicprofiles"))["vnic_profile"] if p["network"]["id"] == network["id"]
    )
    before_db, before_live = await db_nics(s, vm_id), live_macs(libvirt_conn, vm_id)
    status, fault = await api.fault(
        "POST", f"/vms/{vm_id}/nics", {"name": "nic4", "vnic_profile": {"id": profile["id"]}}
    )
    assert status == 502 and fault["code"] == "ACTIVATE_NIC_FAILED"
    assert "hpt-nosuch9" in fault["detail"] and "No such device" in fault["detail"]  # the agent's (libvirt's) reason
    assert fault["data"]["hostCode"] == 49
    assert await db_nics(s, vm_id) == before_db  # no row left behind
    assert live_macs(libvirt_conn, vm_id) == before_live
    events = (await api.ok("GET", f"/events?vm={vm_id}"))["event"]
    assert any(e["code"] == 933 and "hpt-nosuch9" in e["description"] for e in events)  # failed to add, audited


async def _refused_before_the_host(
    setup: EngineSetup, libvirt_conn: libvirt.virConnect, cluster_id: str, host_id: str, profile_id: str,
    os_type: str, expected_code: str,
) -> None:  # fmt: skip
    api = setup.api
    guest.ensure_built()
    vm = await api.ok(
        "POST", "/vms", guest.engine_vm(f"refused-{os_type}-{cluster_id[:8]}", cluster_id, os_type=os_type)
    )
    nic = await api.ok(
        "POST", f"/vms/{vm['id']}/nics", {"name": "n", "vnic_profile": {"id": profile_id}, "plugged": False}
    )
    await api.ok("POST", f"/vms/{vm['id']}/start", {"vm": {"placement_policy": {"hosts": {"host": [{"id": host_id}]}}}})
    try:

        def plugs() -> int:  # the agent logs every hot plug it does, and every one it refuses
            log = setup.agent.log.read_text()
            return log.count(": plugged ua-") + log.count("VM.hotplugNic refused")

        calls_before = plugs()
        status, fault = await api.fault("POST", f"/vms/{vm['id']}/nics/{nic['id']}/activate")
        assert status == 409 and fault["code"] == expected_code
        assert "Stop the VM" in fault["detail"]
        assert plugs() == calls_before  # the host was never asked (monitoring polls it meanwhile)
        assert (await api.ok("GET", f"/vms/{vm['id']}/nics/{nic['id']}"))["plugged"] is False
        assert nic["mac"]["address"] not in live_macs(libvirt_conn, vm["id"])
    finally:
        await api.ok("POST", f"/vms/{vm['id']}/stop")


async def test_cluster_30_refuses_hot_plug_before_calling_the_host(
    engine_setup: EngineSetup, libvirt_conn: libvirt.virConnect
) -> None:
    api, s = engine_setup.api, engine_setup
    cluster = await api.ok("POST", "/clusters", {"name": "old", "version": {"major": 3, "minor": 0}})
    port = int(s.agent.url.split(":")[2].split("/")[0])
    host = await api.ok("POST", "/hosts", {"name": "this-host-again", "address": "localhost", "port": port,
                                           "cluster": {"id": cluster["id"]}})  # fmt: skip
    # Both clusters are in the Default data center: the network 'red' is attached to the old one too.
    await api.ok("POST", f"/clusters/{cluster['id']}/networks", {"id": s.network_id}, status=201)
    await _refused_before_the_host(
        s,
        libvirt_conn,
        cluster["id"],
        host["id"],
        s.profile_id,
        "rhel_6x64",
        "HOTPLUG_NOT_SUPPORTED_BY_CLUSTER_VERSION",
    )


async def test_os_outside_the_list_refuses_hot_plug_before_calling_the_host(
    engine_setup: EngineSetup, libvirt_conn: libvirt.virConnect
) -> None:
    s = engine_setup
    await _refused_before_the_host(
        s, libvirt_conn, s.cluster_id, s.host_id, s.profile_id, "other_linux", "HOTPLUG_NOT_SUPPORTED_BY_OS"
    )
