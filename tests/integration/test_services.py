"""The engine's use cases on real PostgreSQL with a scripted fake agent: the failure and recovery
paths a real host produces only by bad luck (a lost answer, a NIC gone behind the engine's back,
a VM the host still runs, a refusal after the host already acted)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.services import disks, nics, vms
from engine.services.disks import DiskFields
from engine.services.hosts_calls import alias_of
from engine.services.nics import NicFields
from shared_schema.answers import LIBVIRT_CODE, PlacedNic, VmStats
from shared_schema.nic import PciAddress
from tests.fakes import hotplug_refused, unreachable, update_refused
from tests.integration.conftest import USER, Running


async def stored(r: Running) -> dict[str, tuple[bool, str]]:
    async with r.ctx.transaction() as repo:
        return {n.name: (n.plugged, str(n.address or "")) for n in await repo.nics(r.vm.id)}


async def audit_codes(r: Running) -> list[int]:
    async with r.ctx.transaction() as repo:
        return [e.log_type for e in await repo.audit_entries(r.vm.id)]


async def test_start_sends_the_plugged_nics_and_stores_where_the_host_placed_them(running: Running) -> None:
    assert running.vm.status == "up" and running.vm.host_id == running.host.id
    placed = running.agent.vms[running.vm.id][alias_of(running.nic1)]
    assert running.nic1.address == placed.address == PciAddress(0, 0, 3, 0)


async def test_a_plug_the_database_refuses_after_the_host_did_it_is_taken_out_again(running: Running) -> None:
    r = running
    spare = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="spare", profile_id=r.profile.id), False)
    before = await stored(r)
    # The host answers with the slot nic1 holds: the database's unique address index refuses it.
    r.agent.script("VM.hotplugNic", PlacedNic(alias=alias_of(spare), mac=spare.mac, address=r.nic1.address))
    with pytest.raises(EngineError) as refused:
        await nics.set_plugged(r.ctx, USER, r.vm.id, spare.id, True)
    assert refused.value.kind is errors.CONFLICT
    assert r.agent.verbs()[-2:] == ["VM.hotplugNic", "VM.hotunplugNic"]  # the compensating unplug
    assert alias_of(spare) not in r.agent.vms[r.vm.id]
    assert await stored(r) == before
    assert (await audit_codes(r))[0] == nics.PLUG_FAILED


async def test_deactivating_a_nic_the_host_no_longer_has_completes(running: Running) -> None:
    r = running
    del r.agent.vms[r.vm.id][alias_of(r.nic1)]  # removed behind the engine's back
    unplugged = await nics.set_plugged(r.ctx, USER, r.vm.id, r.nic1.id, False)
    assert (unplugged.plugged, unplugged.address) == (False, None)
    assert (await stored(r))["nic1"] == (False, "")
    assert (await audit_codes(r))[0] == nics.UNPLUGGED


async def test_a_host_refusal_carries_its_reason_and_codes_and_changes_nothing(running: Running) -> None:
    r = running
    spare = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="spare", profile_id=r.profile.id), False)
    before = await stored(r)
    r.agent.script("VM.hotplugNic", hotplug_refused("Cannot get interface MTU on 'net1': No such device"))
    with pytest.raises(EngineError) as refused:
        await nics.set_plugged(r.ctx, USER, r.vm.id, spare.id, True)
    assert refused.value.kind is errors.ACTIVATE_NIC_FAILED
    assert "No such device" in refused.value.detail
    assert refused.value.data["hostCode"] == 49 and LIBVIRT_CODE in refused.value.data
    assert await stored(r) == before


async def test_a_host_that_does_not_answer_gives_503_and_changes_nothing(running: Running) -> None:
    r = running
    before = await stored(r)
    r.agent.script("VM.hotunplugNic", unreachable(r.host))
    with pytest.raises(EngineError) as refused:
        await nics.set_plugged(r.ctx, USER, r.vm.id, r.nic1.id, False)
    assert refused.value.kind is errors.HOST_NOT_RESPONDING and refused.value.kind.status == 503
    assert await stored(r) == before


async def test_starting_a_vm_the_host_still_runs_replaces_it_once(running: Running) -> None:
    r = running
    async with r.ctx.transaction() as repo:  # the database lost the start (e.g. a crash): it says down
        await repo.set_vm_status(r.vm.id, "down", None)
    started = await vms.run_vm(r.ctx, USER, r.vm.id)
    assert started.status == "up"
    assert r.agent.verbs()[-3:] == ["VM.create", "VM.destroy", "VM.create"]


async def test_a_start_that_cannot_be_recorded_is_destroyed_on_the_host(running: Running) -> None:
    r = running
    await vms.stop_vm(r.ctx, USER, r.vm.id)
    nic2 = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="nic2", profile_id=r.profile.id))
    # The host reports both NICs on one slot: the database refuses to record it.
    slot = PciAddress(0, 0, 5, 0)
    both = tuple(PlacedNic(alias=alias_of(n), mac=n.mac, address=slot) for n in (r.nic1, nic2))
    r.agent.script("VM.create", VmStats(r.vm.id, r.vm.name, "Up", both))
    with pytest.raises(EngineError):
        await vms.run_vm(r.ctx, USER, r.vm.id)
    assert r.agent.verbs()[-2:] == ["VM.create", "VM.destroy"]
    assert r.vm.id not in r.agent.vms
    async with r.ctx.transaction() as repo:
        assert (await repo.vm(r.vm.id)).status == "down"
    assert (await audit_codes(r))[0] == vms.AUDIT_RUN_FAILED


async def test_stopping_a_vm_the_host_no_longer_runs_completes(running: Running) -> None:
    r = running
    del r.agent.vms[r.vm.id]  # destroyed behind the engine's back
    stopped = await vms.stop_vm(r.ctx, USER, r.vm.id)
    assert stopped.status == "down" and stopped.host_id is None


async def linked(r: Running, nic_id: str) -> tuple[bool, bool, str]:
    async with r.ctx.transaction() as repo:
        nic = await repo.nic(r.vm.id, nic_id)
    return nic.linked, nic.plugged, str(nic.address or "")


async def test_the_link_of_a_plugged_nic_of_a_running_vm_changes_on_the_host_in_place(running: Running) -> None:
    r = running
    address = str(r.nic1.address)
    down = await nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(linked=False), None)
    assert (down.linked, down.plugged, str(down.address)) == (False, True, address)
    assert r.agent.verbs()[-1] == "VM.updateDevice"  # no unplug, no plug
    _, _, update = r.agent.calls[-1]
    assert update.to_params() == {"deviceType": "interface", "alias": alias_of(r.nic1), "linkActive": False}
    assert r.agent.vms[r.vm.id][alias_of(r.nic1)].link_active is False
    assert await linked(r, r.nic1.id) == (False, True, address)
    async with r.ctx.transaction() as repo:
        entry = (await repo.audit_entries(r.vm.id))[0]
    assert (entry.log_type, entry.message) == (nics.UPDATED, "NIC nic1 of VM vm1 was updated. Its link is down now.")

    up = await nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(linked=True), None)
    assert (up.linked, r.agent.vms[r.vm.id][alias_of(r.nic1)].link_active) == (True, True)


async def test_a_link_asked_as_the_database_has_it_is_checked_with_the_host(running: Running) -> None:
    r = running
    r.agent.vms[r.vm.id][alias_of(r.nic1)] = replace(r.agent.vms[r.vm.id][alias_of(r.nic1)], link_active=False)
    up = await nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(linked=True), None)
    assert up.linked and r.agent.vms[r.vm.id][alias_of(r.nic1)].link_active is True
    assert r.agent.verbs()[-2:] == ["Host.getVMFullList", "VM.updateDevice"]


async def test_any_other_change_of_a_plugged_nic_of_a_running_vm_is_refused_before_the_host(running: Running) -> None:
    r = running
    calls = len(r.agent.calls)
    with pytest.raises(EngineError) as refused:
        await nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(name="renamed", linked=False), None)
    assert refused.value.kind is errors.UPDATE_PLUGGED_RUNNING
    assert "only its link state (linked) can change" in refused.value.detail
    assert refused.value.detail.endswith("before editing its name")
    assert "VM.updateDevice" not in r.agent.verbs()[calls:]
    assert await linked(r, r.nic1.id) == (True, True, str(r.nic1.address))
    assert (await audit_codes(r))[0] == nics.UPDATE_FAILED


async def test_a_host_refusing_a_link_change_is_update_nic_failed_with_its_reason(running: Running) -> None:
    r = running
    r.agent.script("VM.updateDevice", update_refused("Operation not supported: cannot modify link state"))
    with pytest.raises(EngineError) as refused:
        await nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(linked=False), None)
    assert refused.value.kind is errors.UPDATE_NIC_FAILED and refused.value.kind.status == 502
    assert refused.value.data["hostCode"] == 56
    assert refused.value.detail == "Failed to update device: Operation not supported: cannot modify link state"
    assert await linked(r, r.nic1.id) == (True, True, str(r.nic1.address))
    async with r.ctx.transaction() as repo:
        entry = (await repo.audit_entries(r.vm.id))[0]
        assert await repo.open_operations(r.vm.id) == []  # a refusal leaves nothing to settle
    assert entry.log_type == nics.UPDATE_FAILED
    assert entry.message == f"Failed to update NIC nic1 of VM vm1: {refused.value.detail}"


async def test_a_link_change_of_a_nic_of_a_stopped_vm_changes_the_database_only(running: Running) -> None:
    r = running
    await vms.stop_vm(r.ctx, USER, r.vm.id)
    calls = len(r.agent.calls)
    down = await nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(linked=False), None)
    assert (down.linked, down.plugged) == (False, True) and len(r.agent.calls) == calls
    started = await vms.run_vm(r.ctx, USER, r.vm.id)
    ((_, _, spec),) = [c for c in r.agent.calls[calls:] if c[0] == "VM.create"]
    assert started.status == "up" and spec.nics[0].link_active is False


async def test_a_q35_vm_starts_as_q35_and_hot_plugs_past_26_devices_until_its_host_says_no(running: Running) -> None:
    r = running
    q35 = await vms.add_vm(
        r.ctx, USER, replace(r.vm, name="q35", bios_type="q35_sea_bios", status="down", host_id=None)
    )
    await vms.run_vm(r.ctx, USER, q35.id)
    (spec,) = [what for verb, vm_id, what in r.agent.calls if verb == "VM.create" and vm_id == q35.id]
    assert spec.machine == "q35"
    placed = [
        await nics.add_nic(r.ctx, USER, q35.id, NicFields(name=f"n{i}", profile_id=r.profile.id)) for i in range(27)
    ]
    assert all(n.plugged for n in placed)  # no i440fx budget of 26
    spare = await nics.add_nic(r.ctx, USER, q35.id, NicFields(name="spare", profile_id=r.profile.id), False)
    full = "no free PCIe root port left for hot plug: the VM was started with 27 (pcie_hotplug_ports); unplug a device"
    r.agent.script("VM.hotplugNic", hotplug_refused(full))
    with pytest.raises(EngineError) as refused:
        await nics.set_plugged(r.ctx, USER, q35.id, spare.id, True)
    assert refused.value.kind is errors.ACTIVATE_NIC_FAILED and refused.value.detail.endswith(full)
    async with r.ctx.transaction() as repo:
        assert (await repo.nic(q35.id, spare.id)) == spare


async def test_disks_attach_while_the_vm_is_down_and_go_to_the_host_as_drives(running: Running) -> None:
    r = running
    boot = DiskFields(name="tiny-disk.qcow2", format="cow", bootable=True)
    with pytest.raises(EngineError) as refused:
        await disks.attach_disk(r.ctx, USER, r.vm.id, boot)
    assert refused.value.kind is errors.VM_STATUS_ILLEGAL and "does not hot-plug disks" in refused.value.detail
    await vms.stop_vm(r.ctx, USER, r.vm.id)
    disk = await disks.attach_disk(r.ctx, USER, r.vm.id, boot)
    await disks.attach_disk(r.ctx, USER, r.vm.id, DiskFields(name="data.img", read_only=True))
    await vms.run_vm(r.ctx, USER, r.vm.id)
    (spec,) = [what for verb, _, what in r.agent.calls if verb == "VM.create"][-1:]
    assert [(d.image, d.format, d.boot_order, d.readonly) for d in spec.drives] == [
        ("tiny-disk.qcow2", "cow", 1, False),
        ("data.img", "raw", None, True),
    ]
    async with r.ctx.transaction() as repo:  # each virtio disk takes a PCI slot of the i440fx budget
        assert (await repo.site(await repo.vm(r.vm.id))).plugged_count == 3
    with pytest.raises(EngineError) as refused:
        await disks.detach_disk(r.ctx, USER, r.vm.id, disk.id)
    assert refused.value.kind is errors.VM_STATUS_ILLEGAL
    assert (await audit_codes(r))[:2] == [disks.DETACH_FAILED, vms.AUDIT_RUN]
