"""A NIC's link state changed through the REST API (JSON, XML, oVirt's SDK) on a running VM: the
engine sends VM.updateDevice to the real agent, the tiny guest's kernel sees its carrier drop and
come back (NETDEV-CARRIER on its console), and the NIC is never unplugged; any other change to
the plugged NIC stays refused, with nothing changed on the host or in the database."""

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
from engine.api.paths import API
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup, boot_vm
from vdsm_agent.live_xml import interface_element


@pytest.fixture(scope="module")
async def link_vm(engine_setup: EngineSetup) -> AsyncIterator[dict[str, Any]]:
    vm = await boot_vm(engine_setup, "link-vm")
    yield vm
    with contextlib.suppress(AssertionError):
        await engine_setup.api.ok("POST", f"/vms/{vm['id']}/stop")


async def plug_and_see_carrier(s: EngineSetup, vm: dict[str, Any], name: str) -> dict[str, Any]:
    """A NIC hot-plugged through the API, once the guest has set it up and sees its carrier."""
    nic: dict[str, Any] = await s.api.ok(
        "POST", f"/vms/{vm['id']}/nics", {"name": name, "vnic_profile": {"id": s.profile_id}}
    )
    await carrier(vm, nic["mac"]["address"], "up")
    return nic


async def carrier(vm: dict[str, Any], mac: str, state: str, after: int = 0) -> None:
    await asyncio.to_thread(guest.wait_for_console, vm["console"], f"NETDEV-CARRIER {mac} {state}", 30.0, after)


def console_size(vm: dict[str, Any]) -> int:
    return int(vm["console"].stat().st_size)


def live_link(conn: libvirt.virConnect, vm_id: str, alias: str) -> str:
    iface = interface_element(conn.lookupByUUIDString(vm_id).XMLDesc(0), alias)
    assert iface is not None, f"{alias} is not in the live XML"
    state = iface.find("link")
    return "up" if state is None else str(state.get("state"))


async def put_xml(s: EngineSetup, path: str, body: str) -> tuple[int, etree._Element]:
    headers = {"Authorization": f"Bearer {s.api.token}", "Content-Type": "application/xml", "Version": "4"}
    async with s.api.session.put(s.api.base + API + path, data=body, headers=headers) as resp:
        return resp.status, etree.fromstring(await resp.read())


async def test_put_linked_changes_the_link_in_the_guest_without_an_unplug(
    engine_setup: EngineSetup, link_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    s, vm_id = engine_setup, link_vm["id"]
    nic = await plug_and_see_carrier(s, link_vm, "link1")
    path, mac, alias = f"/vms/{vm_id}/nics/{nic['id']}", nic["mac"]["address"], f"ua-{nic['id']}"
    shown = await s.api.ok("GET", path)
    assert "edit_link" not in shown["disabled_actions"] and "only its link state" in shown["disabled_actions"]["edit"]

    seen = console_size(link_vm)
    down = await s.api.ok("PUT", path, {"linked": False})  # JSON
    assert (down["linked"], down["plugged"], down["address"]) == (False, True, nic["address"])
    assert live_link(libvirt_conn, vm_id, alias) == "down"
    await carrier(link_vm, mac, "down", seen)

    seen = console_size(link_vm)
    status, up = await put_xml(s, path, "<nic><linked>true</linked></nic>")  # XML, as the SDK sends it
    assert status == 200 and up.tag == "nic" and up.findtext("linked") == "true" and up.findtext("plugged") == "true"
    assert live_link(libvirt_conn, vm_id, alias) == "up"
    await carrier(link_vm, mac, "up", seen)
    assert "NETDEV-REMOVED" not in link_vm["console"].read_text(errors="replace")  # never unplugged

    events = [(e["code"], e["description"]) for e in (await s.api.ok("GET", f"/events?vm={vm_id}"))["event"]]
    assert events[:2] == [(934, "NIC link1 of VM link-vm was updated. Its link is up now."),
                          (934, "NIC link1 of VM link-vm was updated. Its link is down now.")]  # fmt: skip
    await s.api.ok("POST", f"{path}/deactivate")
    await s.api.ok("DELETE", path)


async def test_any_other_change_of_the_plugged_nic_is_refused_and_changes_nothing(
    engine_setup: EngineSetup, link_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    s, vm_id = engine_setup, link_vm["id"]
    nic = await plug_and_see_carrier(s, link_vm, "link2")
    path = f"/vms/{vm_id}/nics/{nic['id']}"
    before = libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0)
    status, fault = await s.api.fault("PUT", path, {"linked": False, "name": "renamed", "interface": "e1000"})
    assert status == 409 and fault["code"] == "CANNOT_UPDATE_PLUGGED_NIC_OF_RUNNING_VM"
    assert fault["detail"] == (
        "NIC link2 is plugged into running VM link-vm; only its link state (linked) can change while it is: "
        "deactivate it (or stop the VM) before editing its interface, name"
    )
    assert libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0) == before
    assert {k: v for k, v in (await s.api.ok("GET", path)).items() if k != "disabled_actions"} == nic
    (event, *_) = (await s.api.ok("GET", f"/events?vm={vm_id}"))["event"]
    assert event["code"] == 935 and event["description"].startswith("Failed to update NIC link2 of VM link-vm: ")
    await s.api.ok("POST", f"{path}/deactivate")
    await s.api.ok("DELETE", path)


async def test_the_ovirt_sdk_changes_the_link_in_place(
    engine_setup: EngineSetup, link_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    s, vm_id = engine_setup, link_vm["id"]
    nic = await plug_and_see_carrier(s, link_vm, "link3")
    mac = nic["mac"]["address"]

    def update(linked: bool) -> tuple[bool, bool]:
        connection = sdk.Connection(url=f"{s.api.base}/ovirt-engine/api", username="admin@internal",
                                    password=ADMIN_PASSWORD)  # fmt: skip
        try:
            service = connection.system_service().vms_service().vm_service(vm_id).nics_service().nic_service(nic["id"])
            answer = service.update(types.Nic(linked=linked))
            refused = ""
            try:
                service.update(types.Nic(name="renamed"))
            except sdk.Error as exc:
                refused = str(exc)
            assert "only its link state (linked) can change" in refused
            return bool(answer.linked), bool(answer.plugged)
        finally:
            connection.close()

    seen = console_size(link_vm)
    assert await asyncio.to_thread(update, False) == (False, True)
    await carrier(link_vm, mac, "down", seen)
    assert live_link(libvirt_conn, vm_id, f"ua-{nic['id']}") == "down"
    seen = console_size(link_vm)
    assert await asyncio.to_thread(update, True) == (True, True)
    await carrier(link_vm, mac, "up", seen)
    await s.api.ok("POST", f"/vms/{vm_id}/nics/{nic['id']}/deactivate")
    await s.api.ok("DELETE", f"/vms/{vm_id}/nics/{nic['id']}")
