"""Host monitoring on real PostgreSQL with a scripted fake host: the reconciliation rules as a
table, monitoring that never fights a use case in flight, host status, and the lease that gives
each host to one engine."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import pytest

from engine.domain import reconcile
from engine.domain.model import Host, Nic, Vm, VnicProfile
from engine.metrics import EngineMetrics
from engine.services import nics
from engine.services.context import Context
from engine.services.hosts_calls import HostCalls, alias_of
from engine.services.monitoring import HOST_NON_RESPONSIVE, HOST_UP, Monitor
from engine.services.nics import NicFields
from engine.settings import EngineSettings
from shared_schema.answers import VM_PAUSED, PlacedNic
from shared_schema.nic import PciAddress
from tests.fakes import ScriptedAgent, unreachable
from tests.integration.conftest import USER, Running

SETTINGS = EngineSettings(database_url="unused", admin_password="x", missed_polls=3, lease_ttl=10)


@dataclass
class Watched:
    ctx: Context
    agent: ScriptedAgent
    monitor: Monitor
    host: Host
    profile: VnicProfile
    vm: Vm
    nic1: Nic  # plugged, on the host
    nic2: Nic  # not plugged


@pytest.fixture
async def watched(running: Running) -> Watched:
    """The running VM, with a second NIC not plugged, watched by engine-a."""
    r = running
    nic2 = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="nic2", profile_id=r.profile.id), activate=False)
    monitor = Monitor(r.ctx, "engine-a", SETTINGS, EngineMetrics())
    await monitor.cycle()  # a first look: nothing differs
    return Watched(r.ctx, r.agent, monitor, r.host, r.profile, r.vm, r.nic1, nic2)


async def state(w: Watched) -> tuple[str, dict[str, tuple[bool, str]], list[str]]:
    async with w.ctx.transaction() as repo:
        vm = await repo.vm(w.vm.id)
        found = {n.name: (n.plugged, str(n.address or "")) for n in await repo.nics(vm.id)}
        foreign = [f"{n.alias} {n.mac}" for n in (await repo.unmanaged_nics([vm.id])).get(vm.id, [])]
    return vm.status, found, foreign


async def new_events(w: Watched, since: int) -> list[int]:
    async with w.ctx.transaction() as repo:
        return [e.log_type for e in await repo.audit_entries(w.vm.id) if e.id > since]


async def last_event_id(w: Watched) -> int:
    async with w.ctx.transaction() as repo:
        entries = await repo.audit_entries()
    return entries[0].id if entries else 0


def foreign_nic() -> PlacedNic:
    return PlacedNic(alias="net3", mac="52:54:00:aa:bb:cc", address=PciAddress(0, 0, 9, 0))


def behind_the_engines_back(w: Watched, case: str) -> None:
    on_host = w.agent.vms[w.vm.id]
    if case == "nic removed":
        del on_host[alias_of(w.nic1)]
    elif case == "nic added":
        on_host[alias_of(w.nic2)] = PlacedNic(alias_of(w.nic2), w.nic2.mac, address=PciAddress(0, 0, 7, 0))
    elif case == "nic moved":
        on_host[alias_of(w.nic1)] = PlacedNic(alias_of(w.nic1), w.nic1.mac, address=PciAddress(0, 0, 8, 0))
    elif case == "foreign nic":
        on_host["net3"] = foreign_nic()
    elif case == "vm destroyed":
        del w.agent.vms[w.vm.id]
    elif case == "vm paused":
        w.agent.statuses[w.vm.id] = VM_PAUSED


CASES = {
    # case: (VM status, NICs as the database shows them, foreign NICs reported, new audit entries)
    "nothing": ("up", {"nic1": (True, "0000:00:03.0"), "nic2": (False, "")}, [], []),
    "nic removed": ("up", {"nic1": (False, ""), "nic2": (False, "")}, [], [reconcile.NIC_UNPLUGGED_ON_HOST]),
    "nic added": ("up", {"nic1": (True, "0000:00:03.0"), "nic2": (True, "0000:00:07.0")}, [],
                  [reconcile.NIC_PLUGGED_ON_HOST]),
    "nic moved": ("up", {"nic1": (True, "0000:00:08.0"), "nic2": (False, "")}, [], []),
    "foreign nic": ("up", {"nic1": (True, "0000:00:03.0"), "nic2": (False, "")}, ["net3 52:54:00:aa:bb:cc"],
                    [reconcile.UNMANAGED_NIC]),
    "vm destroyed": ("down", {"nic1": (True, ""), "nic2": (False, "")}, [], [reconcile.VM_DOWN_ON_HOST]),
    "vm paused": ("paused", {"nic1": (True, "0000:00:03.0"), "nic2": (False, "")}, [],
                  [reconcile.VM_STATUS_ON_HOST]),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
async def test_the_database_follows_the_host(watched: Watched, case: str) -> None:
    w = watched
    since = await last_event_id(w)
    behind_the_engines_back(w, case)
    await w.monitor.cycle()
    status, found, foreign = CASES[case][:3]
    assert await state(w) == (status, found, foreign)
    assert await new_events(w, since) == CASES[case][3]
    if case == "foreign nic":  # reported, never adopted or removed
        assert "net3" in w.agent.vms[w.vm.id] and "VM.hotunplugNic" not in w.agent.verbs()
    await w.monitor.cycle()  # a second look changes nothing more
    assert await state(w) == (status, found, foreign)
    assert len(await new_events(w, since)) == len(CASES[case][3])


async def test_a_foreign_nic_that_goes_away_is_no_longer_reported(watched: Watched) -> None:
    w = watched
    w.agent.vms[w.vm.id]["net3"] = foreign_nic()
    await w.monitor.cycle()
    del w.agent.vms[w.vm.id]["net3"]
    await w.monitor.cycle()
    assert (await state(w))[2] == []


async def test_unchanged_devices_are_not_fetched_again(watched: Watched) -> None:
    w = watched
    await w.monitor.cycle()
    fetched = w.agent.verbs().count("Host.getVMFullList")
    await w.monitor.cycle()
    await w.monitor.cycle()
    assert w.agent.verbs().count("Host.getVMFullList") == fetched
    del w.agent.vms[w.vm.id][alias_of(w.nic1)]
    await w.monitor.cycle()
    assert w.agent.verbs().count("Host.getVMFullList") == fetched + 1


async def test_monitoring_never_touches_a_vm_whose_use_case_is_in_flight(watched: Watched, pool: asyncpg.Pool) -> None:
    w = watched
    del w.agent.vms[w.vm.id][alias_of(w.nic1)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM vms WHERE id = $1 FOR UPDATE", w.vm.id)  # a plug holds the VM
        await asyncio.wait_for(w.monitor.cycle(), 10)  # it does not wait for the lock either
        assert (await state(w))[1]["nic1"] == (True, "0000:00:03.0")
    await w.monitor.cycle()  # the next cycle, once the VM is free
    assert (await state(w))[1]["nic1"] == (False, "")


async def test_a_vm_the_database_thought_down_but_the_host_runs_comes_back_up(watched: Watched) -> None:
    w = watched
    async with w.ctx.transaction() as repo:  # e.g. the engine died between VM.create and its commit
        await repo.set_vm_status(w.vm.id, "down", None)
    await w.monitor.cycle()
    async with w.ctx.transaction() as repo:
        vm = await repo.vm(w.vm.id)
    assert (vm.status, vm.host_id) == ("up", w.host.id)


async def test_a_host_is_non_responsive_after_missed_polls_and_up_again_when_it_answers(watched: Watched) -> None:
    w = watched

    async def host_status() -> str:
        async with w.ctx.transaction() as repo:
            return (await repo.host(w.host.id)).status

    for poll in range(SETTINGS.missed_polls):
        assert await host_status() == "up", f"non_responsive after {poll} missed polls"
        w.agent.script("Host.getAllVmStats", unreachable(w.host))
        await w.monitor.cycle()
    assert await host_status() == "non_responsive"
    await w.monitor.cycle()
    assert await host_status() == "up"
    async with w.ctx.transaction() as repo:
        codes = [e.log_type for e in await repo.audit_entries() if e.host_id == w.host.id]
    assert codes[:2] == [HOST_UP, HOST_NON_RESPONSIVE]


async def test_each_host_is_watched_by_one_engine_and_taken_over_when_its_lease_ends(
    watched: Watched, pool: asyncpg.Pool
) -> None:
    w = watched  # engine-a holds the host since the fixture's first cycle
    other_agent = ScriptedAgent()
    other = Monitor(Context(pool, HostCalls(other_agent)), "engine-b", SETTINGS, EngineMetrics())
    await other.cycle()
    assert other_agent.calls == [] and set(other.watches) == set()
    async with pool.acquire() as conn:  # engine-a died: its lease is not renewed and runs out
        await conn.execute("UPDATE host_leases SET expires_at = now() - interval '1 second'")
    await other.cycle()
    assert set(other.watches) == {w.host.id} and "Host.getAllVmStats" in other_agent.verbs()
    polls = w.agent.verbs().count("Host.getAllVmStats")
    await w.monitor.cycle()  # engine-a is back: the host is not its any more
    assert w.agent.verbs().count("Host.getAllVmStats") == polls and w.monitor.watches == {}


async def test_a_nic_the_engine_plugged_and_the_host_lost_before_the_next_poll_is_unplugged(watched: Watched) -> None:
    """Between two polls the engine plugs nic2 and someone removes it again: the host's device
    hash is back where it was, but the engine's own change makes monitoring look again."""
    w = watched
    await nics.set_plugged(w.ctx, USER, w.vm.id, w.nic2.id, True)
    del w.agent.vms[w.vm.id][alias_of(w.nic2)]
    await w.monitor.cycle()
    assert (await state(w))[1]["nic2"] == (False, "")
