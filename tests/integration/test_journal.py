"""Operations that converge after a crash, on real PostgreSQL with a scripted fake host: the
operations journal keeps what was in flight when an answer was lost or the engine died, and
monitoring (or the next request) settles it from what the host reports.  The kill -9 proof on
the real stack is tests/e2e/test_faults.py."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import pytest

from engine.adapters import database
from engine.domain import errors, reconcile
from engine.domain.errors import EngineError
from engine.domain.model import Nic
from engine.metrics import EngineMetrics
from engine.services import nics, views, vms
from engine.services.context import Context
from engine.services.hosts_calls import HostCalls, alias_of
from engine.services.monitoring import Monitor
from engine.services.nics import NicFields
from engine.settings import EngineSettings
from tests.fakes import AnswerLost, Hold, unreachable
from tests.integration.conftest import USER, Running

SETTINGS = EngineSettings(database_url="unused", admin_password="x")


async def journal(r: Running) -> list[tuple[str, str | None]]:
    async with r.ctx.transaction() as repo:
        return [(op.verb, op.nic_id) for op in await repo.open_operations(r.vm.id)]


async def plugged(r: Running, nic_id: str) -> tuple[bool, str]:
    async with r.ctx.transaction() as repo:
        nic = await repo.nic(r.vm.id, nic_id)
    return nic.plugged, str(nic.address or "")


async def events(r: Running) -> list[tuple[int, str]]:
    async with r.ctx.transaction() as repo:
        return [(e.log_type, e.message) for e in await repo.audit_entries(r.vm.id)]


async def spare(r: Running) -> str:
    nic = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="spare", profile_id=r.profile.id), activate=False)
    return nic.id


async def test_a_plug_whose_answer_was_lost_is_settled_by_the_next_monitoring_cycle(running: Running) -> None:
    r = running
    nic_id = await spare(r)
    r.agent.script("VM.hotplugNic", AnswerLost())
    with pytest.raises(EngineError) as lost:
        await nics.set_plugged(r.ctx, USER, r.vm.id, nic_id, True)
    assert lost.value.kind is errors.HOST_NOT_RESPONDING
    assert "will follow what the host did" in lost.value.detail
    assert await plugged(r, nic_id) == (False, "")  # nobody knows yet: the database stays
    assert await journal(r) == [("plug", nic_id)]

    await Monitor(r.ctx, "engine-a", SETTINGS, EngineMetrics()).cycle()
    on_host = r.agent.vms[r.vm.id][alias_of(await _nic(r, nic_id))]
    assert await plugged(r, nic_id) == (True, str(on_host.address))
    assert await journal(r) == []
    codes = [code for code, _ in await events(r)]
    assert reconcile.INTERRUPTED_SETTLED in codes and reconcile.NIC_PLUGGED_ON_HOST not in codes
    settled = next(text for code, text in await events(r) if code == reconcile.INTERRUPTED_SETTLED)
    assert "plug of NIC spare" in settled and "it had finished" in settled


async def test_an_unplug_the_host_never_received_is_settled_as_not_done(running: Running) -> None:
    r = running
    r.agent.script("VM.hotunplugNic", unreachable(r.host))
    with pytest.raises(EngineError):
        await nics.set_plugged(r.ctx, USER, r.vm.id, r.nic1.id, False)
    assert await journal(r) == [("unplug", r.nic1.id)]
    await Monitor(r.ctx, "engine-a", SETTINGS, EngineMetrics()).cycle()
    assert await plugged(r, r.nic1.id) == (True, str(r.nic1.address))
    assert await journal(r) == []
    settled = next(text for code, text in await events(r) if code == reconcile.INTERRUPTED_SETTLED)
    assert "unplug of NIC nic1" in settled and "it had not happened" in settled


async def test_an_engine_that_dies_during_the_host_call_leaves_an_operation_that_is_settled(running: Running) -> None:
    r = running
    nic_id = await spare(r)
    hold = Hold()
    r.agent.script("VM.hotplugNic", hold)
    use_case = asyncio.create_task(nics.set_plugged(r.ctx, USER, r.vm.id, nic_id, True))
    await asyncio.wait_for(hold.reached.wait(), 10)
    use_case.cancel()  # the engine is gone: its transaction rolls back, the host has the NIC
    with pytest.raises(asyncio.CancelledError):
        await use_case
    assert await plugged(r, nic_id) == (False, "") and await journal(r) == [("plug", nic_id)]
    await Monitor(r.ctx, "engine-b", SETTINGS, EngineMetrics()).cycle()
    assert (await plugged(r, nic_id))[0] is True and await journal(r) == []


async def test_a_refused_plug_leaves_nothing_to_settle(running: Running) -> None:
    r = running
    nic_id = await spare(r)
    r.agent.script("VM.hotplugNic", EngineError(errors.ACTIVATE_NIC_FAILED, "x"))
    with pytest.raises(EngineError):
        await nics.set_plugged(r.ctx, USER, r.vm.id, nic_id, True)
    assert await journal(r) == []


async def test_activate_of_a_nic_the_database_says_plugged_asks_the_host_and_plugs_it_again(running: Running) -> None:
    r = running
    del r.agent.vms[r.vm.id][alias_of(r.nic1)]  # gone on the host; no monitoring cycle has run
    answer = await nics.set_plugged(r.ctx, USER, r.vm.id, r.nic1.id, True)
    assert answer.plugged and alias_of(r.nic1) in r.agent.vms[r.vm.id]
    assert r.agent.verbs()[-2:] == ["Host.getVMFullList", "VM.hotplugNic"]
    assert await plugged(r, r.nic1.id) == (True, str(r.agent.vms[r.vm.id][alias_of(r.nic1)].address))


async def test_activate_of_a_plugged_nic_the_host_has_changes_nothing(running: Running) -> None:
    r = running
    answer = await nics.set_plugged(r.ctx, USER, r.vm.id, r.nic1.id, True)
    assert answer.plugged and r.agent.verbs()[-1] == "Host.getVMFullList"


async def test_deactivate_of_a_nic_the_database_says_unplugged_but_the_host_has_unplugs_it(running: Running) -> None:
    r = running
    nic_id = await spare(r)
    r.agent.script("VM.hotplugNic", AnswerLost())
    with pytest.raises(EngineError):
        await nics.set_plugged(r.ctx, USER, r.vm.id, nic_id, True)
    nic = await _nic(r, nic_id)
    assert alias_of(nic) in r.agent.vms[r.vm.id]  # the host has it; the database says unplugged
    await nics.set_plugged(r.ctx, USER, r.vm.id, nic_id, False)  # the journal makes it look first
    assert alias_of(nic) not in r.agent.vms[r.vm.id]
    assert await plugged(r, nic_id) == (False, "") and await journal(r) == []


async def test_a_vm_destroyed_behind_the_engines_back_starts_again_at_once(running: Running) -> None:
    r = running
    del r.agent.vms[r.vm.id]  # virsh destroy; no monitoring cycle has run
    started = await vms.run_vm(r.ctx, USER, r.vm.id)
    assert started.status == "up" and r.vm.id in r.agent.vms
    codes = [code for code, _ in await events(r)]
    assert codes[:2] == [vms.AUDIT_RUN, reconcile.VM_DOWN_ON_HOST]


async def test_a_stop_racing_a_removal_answers_with_the_stopped_vm(running: Running) -> None:
    r = running
    hold = Hold()
    r.agent.script("VM.destroy", hold)
    stop = asyncio.create_task(vms.stop_vm(r.ctx, USER, r.vm.id))
    await asyncio.wait_for(hold.reached.wait(), 10)
    remove = asyncio.create_task(vms.remove_vm(r.ctx, USER, r.vm.id))  # queues behind the stop's lock
    await asyncio.sleep(0.2)
    hold.release.set()
    stopped = await stop
    assert stopped.status == "down"
    await remove
    with pytest.raises(EngineError) as gone:
        await views.vm(r.ctx, _admin(), r.vm.id)
    assert gone.value.kind is errors.VM_NOT_FOUND


async def test_a_database_restart_during_a_plug_answers_503_and_monitoring_stores_what_the_host_did(
    running: Running, pool: asyncpg.Pool
) -> None:
    r = running
    nic_id = await spare(r)
    hold = Hold()
    r.agent.script("VM.hotplugNic", hold)
    use_case = asyncio.create_task(nics.set_plugged(r.ctx, USER, r.vm.id, nic_id, True))
    await asyncio.wait_for(hold.reached.wait(), 10)
    async with pool.acquire() as killer:  # what a restart does to every connection of the engine
        await killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1",
            await killer.fetchval("SELECT pg_backend_pid()"),
        )
    hold.release.set()
    with pytest.raises(EngineError) as gone:
        await use_case
    assert gone.value.kind is errors.DATABASE_UNAVAILABLE and gone.value.kind.status == 503
    assert "cannot be reached" in gone.value.detail
    assert await journal(r) == [("plug", nic_id)]  # the engine reconnects by itself
    await Monitor(r.ctx, "engine-a", SETTINGS, EngineMetrics()).cycle()
    nic = await _nic(r, nic_id)
    assert nic.plugged and alias_of(nic) in r.agent.vms[r.vm.id] and await journal(r) == []
    assert not (await nics.set_plugged(r.ctx, USER, r.vm.id, nic_id, False)).plugged


async def _nic(r: Running, nic_id: str) -> Nic:
    async with r.ctx.transaction() as repo:
        return await repo.nic(r.vm.id, nic_id)


def _admin() -> views.Caller:
    return views.Caller(USER, "admin")


async def test_a_change_that_waits_too_long_for_its_vm_is_refused_as_busy(
    running: Running, migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "VM_LOCK_WAIT_SECONDS", 1)  # instead of 90 s
    pool = await database.create_pool(migrated_database_url, max_size=4)
    try:
        async with pool.acquire() as holder, holder.transaction():
            await holder.execute("SELECT 1 FROM vms WHERE id = $1 FOR UPDATE", running.vm.id)  # a change runs
            with pytest.raises(EngineError) as busy:
                await vms.stop_vm(Context(pool, HostCalls(running.agent)), USER, running.vm.id)
        assert busy.value.kind is errors.VM_BUSY and "try again" in busy.value.detail
        assert running.vm.id in running.agent.vms  # nothing reached the host
    finally:
        await pool.close()


async def test_a_link_change_whose_answer_was_lost_is_settled_by_the_next_monitoring_cycle(running: Running) -> None:
    r = running
    r.agent.script("VM.updateDevice", AnswerLost())
    with pytest.raises(EngineError) as lost:
        await nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(linked=False), None)
    assert lost.value.kind is errors.HOST_NOT_RESPONDING and "will follow what the host did" in lost.value.detail
    assert (await _nic(r, r.nic1.id)).linked is True  # nobody knows yet: the database stays
    assert await journal(r) == [("update", r.nic1.id)]

    await Monitor(r.ctx, "engine-a", SETTINGS, EngineMetrics()).cycle()
    assert (await _nic(r, r.nic1.id)).linked is False  # the host did it
    assert await journal(r) == []
    found = await events(r)
    assert reconcile.NIC_LINK_ON_HOST not in [code for code, _ in found]  # explained, not "outside the engine"
    settled = next(text for code, text in found if code == reconcile.INTERRUPTED_SETTLED)
    assert "link change of NIC nic1" in settled and "has its link down" in settled and "it had finished" in settled


async def test_a_link_change_the_host_never_received_is_settled_as_not_done(running: Running) -> None:
    r = running
    r.agent.script("VM.updateDevice", unreachable(r.host))
    with pytest.raises(EngineError):
        await nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(linked=False), None)
    await Monitor(r.ctx, "engine-a", SETTINGS, EngineMetrics()).cycle()
    assert (await _nic(r, r.nic1.id)).linked is True and await journal(r) == []
    settled = next(text for code, text in await events(r) if code == reconcile.INTERRUPTED_SETTLED)
    assert "has its link up" in settled and "it had not happened" in settled


async def test_monitoring_follows_a_link_changed_behind_the_engines_back(running: Running) -> None:
    r = running
    placed = r.agent.vms[r.vm.id][alias_of(r.nic1)]
    r.agent.vms[r.vm.id][alias_of(r.nic1)] = replace(placed, link_active=False)  # virsh domif-setlink … down
    await Monitor(r.ctx, "engine-a", SETTINGS, EngineMetrics()).cycle()
    nic = await _nic(r, r.nic1.id)
    assert (nic.linked, nic.plugged, nic.address) == (False, True, r.nic1.address)
    code, text = (await events(r))[0]
    assert code == reconcile.NIC_LINK_ON_HOST and "link of NIC nic1 of VM vm1 is down" in text
