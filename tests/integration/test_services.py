"""The engine's use cases on real PostgreSQL with a scripted fake agent: the failure and recovery
paths a real host produces only by bad luck (a lost answer, a NIC gone behind the engine's back,
a VM the host still runs, a refusal after the host already acted)."""

from __future__ import annotations

import pytest

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.services import nics, vms
from engine.services.hosts_calls import alias_of
from engine.services.nics import NicFields
from shared_schema.answers import LIBVIRT_CODE, PlacedNic, VmStats
from shared_schema.nic import PciAddress
from tests.fakes import hotplug_refused, unreachable
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
