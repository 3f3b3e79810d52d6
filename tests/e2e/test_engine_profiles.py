"""vNIC profiles and network QoS through the REST API and oVirt's SDK on the real stack: a NIC on a
profile with a QoS is hot-plugged with the QoS as libvirt's <bandwidth> — which this machine's
kernel cannot apply (no sfq qdisc, no police action: docs/agent.md), so the activate fails with
tc's reason from the host and nothing is half-applied; oVirt's canDo keeps profiles that plugged
NICs of running VMs use from changing under them, and keeps profiles in use."""

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

from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup, boot_vm
from tests.e2e.test_agent_nics import _kernel_has_qos_support
from tests.e2e.test_engine_story import db_nics, live_macs

RATES = {"inbound_average": 10, "inbound_peak": 20, "inbound_burst": 5,
         "outbound_average": 4, "outbound_peak": 8, "outbound_burst": 2}  # fmt: skip


@pytest.fixture(scope="module")
async def profile_vm(engine_setup: EngineSetup) -> AsyncIterator[dict[str, Any]]:
    vm = await boot_vm(engine_setup, "profile-vm")
    yield vm
    with contextlib.suppress(AssertionError):
        await engine_setup.api.ok("POST", f"/vms/{vm['id']}/stop")


async def data_center_of(s: EngineSetup) -> str:
    return str((await s.api.ok("GET", f"/networks/{s.network_id}"))["data_center"]["id"])


async def test_a_nic_on_a_qos_profile_is_plugged_with_bandwidth_or_refused_with_tcs_reason(
    engine_setup: EngineSetup, profile_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    s, vm_id = engine_setup, profile_vm["id"]
    dc = await data_center_of(s)
    qos = await s.api.ok("POST", f"/datacenters/{dc}/qoss", {"name": "shaped", "type": "network", **RATES})
    profile = await s.api.ok("POST", f"/networks/{s.network_id}/vnicprofiles",
                             {"name": "shaped", "qos": {"id": qos["id"]}})  # fmt: skip
    assert profile["qos"] == {"id": qos["id"], "href": f"/ovirt-engine/api/datacenters/{dc}/qoss/{qos['id']}"}
    nic = await s.api.ok("POST", f"/vms/{vm_id}/nics", {"name": "shaped1", "vnic_profile": {"id": profile["id"]},
                                                       "plugged": False})  # fmt: skip
    before, live_before = await db_nics(s, vm_id), libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0)

    got, answer = await s.api.request("POST", f"/vms/{vm_id}/nics/{nic['id']}/activate")
    if await asyncio.to_thread(_kernel_has_qos_support):  # a hypervisor kernel: the QoS is applied
        assert got == 200, answer
        live = etree.fromstring(libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0))
        (iface,) = live.xpath(f"devices/interface[mac/@address='{nic['mac']['address']}']")
        assert dict(iface.find("bandwidth/inbound").attrib) == {"average": "1250", "peak": "2500", "burst": "5000"}
        assert dict(iface.find("bandwidth/outbound").attrib) == {"average": "500", "peak": "1000", "burst": "2000"}
        return
    # This kernel: libvirt refuses (tc: "Specified qdisc kind is unknown" / "Failed to load TC action module").
    assert got == 502 and answer["code"] == "ACTIVATE_NIC_FAILED" and answer["data"]["hostCode"] == 49, answer
    assert "qdisc kind is unknown" in answer["detail"] or "TC action" in answer["detail"], answer
    assert await db_nics(s, vm_id) == before  # unplugged, no address, as before
    assert libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0) == live_before  # nothing half-applied
    assert nic["mac"]["address"] not in live_macs(libvirt_conn, vm_id)
    (event, *_) = (await s.api.ok("GET", f"/events?vm={vm_id}"))["event"]
    assert event["code"] == 1013 and event["description"].startswith("Failed to plug NIC shaped1 of VM profile-vm: ")

    # Without the QoS (the NIC is not on a host: the profile may change), the same NIC plugs.
    await s.api.ok("PUT", f"/vnicprofiles/{profile['id']}", {"qos": {}})
    done = await s.api.ok("POST", f"/vms/{vm_id}/nics/{nic['id']}/activate")
    assert done["nic"]["plugged"] and nic["mac"]["address"] in live_macs(libvirt_conn, vm_id)
    # Plugged into the running VM now: its profile's QoS may not change under it, nor go.
    status, fault = await s.api.fault("PUT", f"/vnicprofiles/{profile['id']}", {"qos": {"id": qos["id"]}})
    assert status == 409 and fault["code"] == "VNIC_PROFILE_USED_BY_RUNNING_VMS"
    assert fault["detail"] == (
        "vNIC profile shaped is used by NICs plugged into running VMs (profile-vm/shaped1); deactivate them "
        "(or stop their VMs) before changing its QoS"
    )
    status, fault = await s.api.fault("DELETE", f"/vnicprofiles/{profile['id']}")
    assert status == 409 and fault["code"] == "OBJECT_IN_USE" and "(profile-vm/shaped1)" in fault["detail"]
    await asyncio.sleep(1)  # the guest has set the card up: the unplug is acknowledged
    await s.api.ok("POST", f"/vms/{vm_id}/nics/{nic['id']}/deactivate")
    await s.api.ok("DELETE", f"/vms/{vm_id}/nics/{nic['id']}")
    await s.api.ok("DELETE", f"/networks/{s.network_id}/vnicprofiles/{profile['id']}")
    await s.api.ok("DELETE", f"/datacenters/{dc}/qoss/{qos['id']}")


def _sdk_story(s: EngineSetup, vm_id: str, dc_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    connection = sdk.Connection(url=f"{s.api.base}/ovirt-engine/api", username="admin@internal",
                                password=ADMIN_PASSWORD)  # fmt: skip
    try:
        system = connection.system_service()
        qoss = system.data_centers_service().data_center_service(dc_id).qoss_service()
        qos = qoss.add(types.Qos(name="sdk-qos", type=types.QosType.NETWORK, inbound_average=10, inbound_peak=20,
                                 inbound_burst=5))  # fmt: skip
        out["qos"] = (qos.type, qos.inbound_average, qos.inbound_peak, qos.inbound_burst, qos.outbound_average)
        profiles = system.vnic_profiles_service()
        mirror = profiles.add(types.VnicProfile(name="sdk-mirror", network=types.Network(id=s.network_id),
                                                port_mirroring=True, qos=types.Qos(id=qos.id)))  # fmt: skip
        out["mirror"] = (mirror.port_mirroring, mirror.qos.id == qos.id, mirror.pass_through.mode)
        of_network = system.networks_service().network_service(s.network_id).vnic_profiles_service()
        sriov = of_network.add(
            types.VnicProfile(name="sdk-vf", pass_through=types.VnicPassThrough(mode=types.VnicPassThroughMode.ENABLED))
        )
        out["sriov"] = sriov.pass_through.mode
        out["listed"] = sorted(p.name for p in of_network.list())
        profiles.profile_service(mirror.id).update(types.VnicProfile(description="watches red", qos=types.Qos()))
        updated = profiles.profile_service(mirror.id).get()
        out["updated"] = (updated.description, updated.qos)
        qoss.qos_service(qos.id).update(types.Qos(inbound_average=15))
        out["faster"] = qoss.qos_service(qos.id).get().inbound_average

        # A NIC of the running VM on the mirroring profile: its mirroring cannot change under it.
        nics = system.vms_service().vm_service(vm_id).nics_service()
        nic = nics.add(types.Nic(name="sdk-watch", vnic_profile=types.VnicProfile(id=mirror.id)))
        out["plugged"] = nic.plugged
        for refused in (lambda: profiles.profile_service(mirror.id).update(types.VnicProfile(port_mirroring=False)),
                        profiles.profile_service(mirror.id).remove,
                        lambda: nics.nic_service(nic.id).update(types.Nic(vnic_profile=types.VnicProfile(
                            id=sriov.id)))):  # fmt: skip
            try:
                refused()
            except sdk.Error as exc:
                out.setdefault("refusals", []).append(str(exc))
        cold = nics.add(types.Nic(name="sdk-vf1", vnic_profile=types.VnicProfile(id=sriov.id), plugged=False))
        try:
            nics.nic_service(cold.id).activate()
        except sdk.Error as exc:
            out["sriov plug"] = str(exc)
        nics.nic_service(cold.id).remove()
        out["nic"] = nic.id
    finally:
        connection.close()
    return out


async def test_the_ovirt_sdk_manages_profiles_and_qos(
    engine_setup: EngineSetup, profile_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    s, vm_id = engine_setup, profile_vm["id"]
    out = await asyncio.to_thread(_sdk_story, s, vm_id, await data_center_of(s))
    assert out["qos"] == (types.QosType.NETWORK, 10, 20, 5, None)
    assert out["mirror"] == (True, True, types.VnicPassThroughMode.DISABLED)
    assert out["sriov"] == types.VnicPassThroughMode.ENABLED
    assert {"red", "sdk-mirror", "sdk-vf"} <= set(out["listed"])
    assert out["updated"] == ("watches red", None) and out["faster"] == 15
    assert out["plugged"] is True  # a mirroring NIC, hot-plugged (its frames: test_engine_mirroring.py)
    mirroring, removal, to_sriov = out["refusals"]
    assert "used by NICs plugged into running VMs (profile-vm/sdk-watch)" in mirroring and "port mirroring" in mirroring
    assert "is used by NICs (profile-vm/sdk-watch)" in removal
    assert "is on a pass-through (SR-IOV) vNIC profile" in to_sriov  # refused before the update rule
    assert "pass-through (SR-IOV) vNIC profile" in out["sriov plug"] and "does not manage" in out["sriov plug"]
    await asyncio.sleep(1)
    await s.api.ok("POST", f"/vms/{vm_id}/nics/{out['nic']}/deactivate")
    await s.api.ok("DELETE", f"/vms/{vm_id}/nics/{out['nic']}")
