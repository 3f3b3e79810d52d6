"""The Repository and the schema's constraints as the last guard, on a real migrated PostgreSQL.

The services check the rules first; these tests go around them on purpose (straight to the
Repository) to show that the database still refuses what the rules would have refused, and that
each refusal comes back as an EngineError of the right kind.  The MAC pool and the VM row lock
are exercised through the services too.  All VMs stay down: no host is ever called.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from engine.adapters.repository import Repository
from engine.domain import errors, search
from engine.domain.errors import EngineError, ErrorKind
from engine.domain.macpool import int_to_mac, mac_to_int
from engine.domain.model import Nic, Version, Vm, VnicProfile
from engine.domain.rules import PCI_DEVICE_BUDGET
from engine.services import inventory, nics, vms
from engine.services.context import Context
from engine.services.hosts_calls import HostCalls
from engine.services.nics import NicFields
from shared_schema.nic import PciAddress
from tests.fakes import ScriptedAgent

USER = "admin@internal"
POOL_START = "56:6f:1a:00:00:00"  # the first MAC of sql/0001's default mac_pool_ranges row


def pool_mac(n: int) -> str:
    """The n-th MAC of the default pool range."""
    return int_to_mac(mac_to_int(POOL_START) + n)


@pytest.fixture
def ctx(pool: asyncpg.Pool) -> Context:
    return Context(pool, HostCalls(ScriptedAgent()))  # every VM stays down: no host is called


@dataclass
class World:
    profile: VnicProfile
    vm1: Vm
    vm2: Vm


@pytest.fixture
async def world(ctx: Context) -> World:
    """A 4.7 cluster with one network (and its profile) and two down rhel_6x64 VMs."""
    cluster = await inventory.add_cluster(ctx, "c1", Version(4, 7))
    _, profile = await inventory.add_network(ctx, "net1", cluster_id=cluster.id, bridge="br-test")

    async def vm(name: str) -> Vm:
        return await vms.add_vm(
            ctx, USER, Vm(id="", name=name, cluster_id=cluster.id, os_type="rhel_6x64", status="down",
                          memory_bytes=128 * 1024 * 1024),
        )  # fmt: skip

    return World(profile, await vm("vm1"), await vm("vm2"))


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as acquired:
        yield acquired


def new_nic(vm: Vm, name: str, mac: str, profile: VnicProfile, **changes: object) -> Nic:
    nic = Nic(
        id=str(uuid.uuid4()), vm_id=vm.id, name=name, mac=mac, model="virtio", profile_id=profile.id,
        linked=True, plugged=False,
    )  # fmt: skip
    return nic.changed(**changes)


async def insert(conn: asyncpg.Connection, nic: Nic) -> Nic:
    async with conn.transaction():
        await Repository(conn).insert_nic(nic)
    return nic


async def refused(conn: asyncpg.Connection, kind: ErrorKind, change: Callable[[Repository], Awaitable[None]]) -> None:
    """The change, in a transaction of its own, is refused with ``kind`` (and rolled back)."""
    with pytest.raises(EngineError) as info:
        async with conn.transaction():
            await change(Repository(conn))
    assert info.value.kind is kind, info.value


async def row_counts(conn: asyncpg.Connection) -> tuple[int, int]:
    return (
        await conn.fetchval("SELECT count(*) FROM vm_device"),
        await conn.fetchval("SELECT count(*) FROM vm_interface"),
    )


# -- constraints through the Repository ------------------------------------------------------
async def test_nic_name_is_unique_per_vm_but_two_vms_may_share_it(conn: asyncpg.Connection, world: World) -> None:
    p = world.profile
    eth0 = await insert(conn, new_nic(world.vm1, "eth0", pool_mac(100), p))
    await insert(conn, new_nic(world.vm2, "eth0", pool_mac(101), p))  # another VM: fine
    eth1 = await insert(conn, new_nic(world.vm1, "eth1", pool_mac(102), p))
    before = await row_counts(conn)

    await refused(conn, errors.NIC_NAME_IN_USE, lambda r: r.insert_nic(new_nic(world.vm1, "eth0", pool_mac(103), p)))
    # insert_nic writes vm_device first: the refused vm_interface row took it back with it.
    assert await row_counts(conn) == before
    await refused(conn, errors.NIC_NAME_IN_USE, lambda r: r.update_nic(eth1.changed(name="eth0")))

    repo = Repository(conn)
    assert [(n.id, n.name) for n in await repo.nics(world.vm1.id)] == [(eth0.id, "eth0"), (eth1.id, "eth1")]
    assert [n.name for n in await repo.nics(world.vm2.id)] == ["eth0"]
    # Renaming to a name only the other VM uses is fine.
    await insert(conn, new_nic(world.vm2, "only-on-vm2", pool_mac(104), p))
    async with conn.transaction():
        await repo.update_nic(eth1.changed(name="only-on-vm2"))
    assert (await repo.nic(world.vm1.id, eth1.id)).name == "only-on-vm2"


async def test_mac_is_unique_among_all_nics(conn: asyncpg.Connection, world: World) -> None:
    p = world.profile
    await insert(conn, new_nic(world.vm1, "eth0", pool_mac(100), p))
    other = await insert(conn, new_nic(world.vm2, "eth0", pool_mac(101), p))
    before = await row_counts(conn)

    # On the same VM, on another VM, and spelt in capitals (macaddr compares values, not text).
    await refused(conn, errors.MAC_IN_USE, lambda r: r.insert_nic(new_nic(world.vm1, "eth1", pool_mac(100), p)))
    await refused(conn, errors.MAC_IN_USE, lambda r: r.insert_nic(new_nic(world.vm2, "eth1", pool_mac(100), p)))
    await refused(conn, errors.MAC_IN_USE, lambda r: r.insert_nic(new_nic(world.vm2, "eth1", pool_mac(100).upper(), p)))
    assert await row_counts(conn) == before
    await refused(conn, errors.MAC_IN_USE, lambda r: r.update_nic(other.changed(mac=pool_mac(100))))
    assert (await Repository(conn).nic(world.vm2.id, other.id)).mac == pool_mac(101)


async def test_pci_address_is_unique_among_the_plugged_devices_of_a_vm(conn: asyncpg.Connection, world: World) -> None:
    p, slot3, slot4 = world.profile, PciAddress(0, 0, 3, 0), PciAddress(0, 0, 4, 0)
    a = await insert(conn, new_nic(world.vm1, "a", pool_mac(1), p, plugged=True, address=slot3, alias="net0"))
    b = await insert(conn, new_nic(world.vm1, "b", pool_mac(2), p))
    # No address known ('') is not an address: any number of plugged devices may have none.
    await insert(conn, new_nic(world.vm1, "c", pool_mac(3), p, plugged=True))
    await insert(conn, new_nic(world.vm1, "d", pool_mac(4), p, plugged=True))
    before = await row_counts(conn)

    # A second plugged device on the same slot: refused, by set_device, update_nic and insert_nic.
    await refused(conn, errors.CONFLICT, lambda r: r.set_device(b.changed(plugged=True, address=slot3)))
    await refused(conn, errors.CONFLICT, lambda r: r.update_nic(b.changed(plugged=True, address=slot3, linked=False)))
    await refused(
        conn, errors.CONFLICT, lambda r: r.insert_nic(new_nic(world.vm1, "e", pool_mac(5), p, plugged=True,
                                                              address=slot3)),
    )  # fmt: skip
    assert await row_counts(conn) == before
    repo = Repository(conn)
    assert (await repo.nic(world.vm1.id, b.id)).linked is True  # update_nic's first half was rolled back too

    # An unplugged device may keep the same address ...
    async with conn.transaction():
        await repo.set_device(b.changed(plugged=False, address=slot3))
    assert (await repo.nic(world.vm1.id, b.id)).address == slot3
    # ... but cannot be plugged on it while 'a' holds it.
    await refused(conn, errors.CONFLICT, lambda r: r.set_device(b.changed(plugged=True, address=slot3)))
    # Another VM may use the same address.
    other = await insert(conn, new_nic(world.vm2, "a", pool_mac(6), p, plugged=True, address=slot3))
    assert (await repo.nic(world.vm2.id, other.id)).address == slot3

    # Once 'a' is unplugged (the engine clears its address, but even keeping it), 'b' may take the slot.
    async with conn.transaction():
        await repo.set_device(a.changed(plugged=False))
        await repo.set_device(b.changed(plugged=True, address=slot3))
    # And a plugged device may move to a free slot.
    async with conn.transaction():
        await repo.set_device(b.changed(plugged=True, address=slot4))
    assert {n.name: (n.plugged, n.address) for n in await repo.nics(world.vm1.id)} == {
        "a": (False, slot3), "b": (True, slot4), "c": (True, None), "d": (True, None),
    }  # fmt: skip


async def test_interface_view_active_follows_the_device_plugged_flag(conn: asyncpg.Connection, world: World) -> None:
    nic = await insert(conn, new_nic(world.vm1, "eth0", pool_mac(0), world.profile))
    repo = Repository(conn)

    async def active() -> bool:
        value: bool = await conn.fetchval("SELECT active FROM vm_interface_view WHERE id = $1", nic.id)
        return value

    assert await active() is False and (await repo.nic(world.vm1.id, nic.id)).plugged is False
    async with conn.transaction():
        await repo.set_device(nic.changed(plugged=True))
    assert await active() is True and (await repo.nic(world.vm1.id, nic.id)).plugged is True
    # It is a view over vm_device, not a copy: a change to the device shows at once.
    await conn.execute("UPDATE vm_device SET is_plugged = false WHERE device_id = $1", nic.id)
    assert await active() is False and (await repo.nic(world.vm1.id, nic.id)).plugged is False
    # update_nic stores both halves.
    async with conn.transaction():
        await repo.update_nic(nic.changed(plugged=True, name="eth0-renamed"))
    row = await conn.fetchrow("SELECT name, active FROM vm_interface_view WHERE id = $1", nic.id)
    assert (row["name"], row["active"]) == ("eth0-renamed", True)


async def test_deleting_a_vm_cascades_to_its_devices_and_interfaces(
    ctx: Context, conn: asyncpg.Connection, world: World
) -> None:
    p = world.profile
    for i in range(3):
        await insert(conn, new_nic(world.vm1, f"eth{i}", pool_mac(i), p, plugged=i == 0))
    await conn.execute(
        "INSERT INTO vm_device (device_id, vm_id, type, device) VALUES ($1, $2, 'disk', 'disk')",
        uuid.uuid4(), world.vm1.id,
    )  # fmt: skip
    kept = await insert(conn, new_nic(world.vm2, "eth0", pool_mac(10), p))

    async def rows(vm: Vm) -> tuple[int, int, int]:
        return (
            await conn.fetchval("SELECT count(*) FROM vm_device WHERE vm_id = $1", vm.id),
            await conn.fetchval("SELECT count(*) FROM vm_interface WHERE vm_id = $1", vm.id),
            await conn.fetchval("SELECT count(*) FROM vm_interface_view WHERE vm_id = $1", vm.id),
        )

    assert await rows(world.vm1) == (4, 3, 3)
    async with conn.transaction():
        await Repository(conn).remove_vm(world.vm1.id)
    assert await rows(world.vm1) == (0, 0, 0)
    assert await rows(world.vm2) == (1, 1, 1)
    # delete_nic: the device row goes and takes its interface row with it.
    async with conn.transaction():
        await Repository(conn).delete_nic(kept.id)
    assert await rows(world.vm2) == (0, 0, 0)
    # The freed MACs are free again: the pool hands out the lowest one.
    added = await nics.add_nic(ctx, USER, world.vm2.id, NicFields(name="eth0", profile_id=p.id))
    assert added.mac == pool_mac(0)

    # Through the service, a down VM with NICs goes the same way.
    await vms.remove_vm(ctx, USER, world.vm2.id)
    assert await rows(world.vm2) == (0, 0, 0)
    with pytest.raises(EngineError) as info:
        await Repository(conn).vm(world.vm2.id)
    assert info.value.kind is errors.VM_NOT_FOUND


# -- the VM row lock -------------------------------------------------------------------------
async def blocked_by(observer: asyncpg.Connection, waiter_pid: int, holder_pid: int) -> None:
    """Return once PostgreSQL reports ``waiter_pid`` waiting for a lock ``holder_pid`` holds."""
    for _ in range(1000):
        blockers = await observer.fetchval("SELECT pg_blocking_pids($1)", waiter_pid)
        if holder_pid in blockers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {waiter_pid} never waited for {holder_pid}")


async def waiting_backend(observer: asyncpg.Connection) -> int:
    """The pid of the (one) backend of this database that waits for a lock."""
    for _ in range(1000):
        pid: int | None = await observer.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        if pid:
            return pid
        await asyncio.sleep(0.01)
    raise AssertionError("no backend ever waited for a lock")


async def test_vm_row_lock_blocks_a_second_lock_until_the_first_commits(pool: asyncpg.Pool, world: World) -> None:
    events: list[str] = []
    second_locked = asyncio.Event()
    async with pool.acquire() as c1, pool.acquire() as c2, pool.acquire() as observer:
        tr1 = c1.transaction()
        await tr1.start()
        try:
            await Repository(c1).vm(world.vm1.id, lock=True)
            events.append("first locked")

            async def second() -> str:
                async with c2.transaction():
                    events.append("second asks")
                    vm = await Repository(c2).vm(world.vm1.id, lock=True)
                    events.append("second locked")
                    second_locked.set()
                    return vm.status

            task = asyncio.create_task(second())
            await blocked_by(observer, c2.get_server_pid(), c1.get_server_pid())
            assert not second_locked.is_set() and not task.done()
            assert events == ["first locked", "second asks"]

            # Meanwhile: plain reads are not blocked, nor is the lock of another VM.
            assert (await Repository(observer).vm(world.vm1.id)).name == "vm1"
            async with observer.transaction():
                other = await asyncio.wait_for(Repository(observer).vm(world.vm2.id, lock=True), 30)
            assert other.name == "vm2" and not second_locked.is_set()

            await c1.execute("UPDATE vms SET memory_bytes = memory_bytes * 2 WHERE id = $1", world.vm1.id)
            events.append("first commits")
            await tr1.commit()
        except BaseException:
            await tr1.rollback()
            raise
        assert await asyncio.wait_for(task, 30) == "down"
    assert events == ["first locked", "second asks", "first commits", "second locked"]


async def test_a_service_waits_for_the_vm_lock_and_then_sees_the_committed_nic(
    ctx: Context, pool: asyncpg.Pool, world: World
) -> None:
    """The rules run after the lock is taken, so the second writer sees the first one's row."""
    async with pool.acquire() as c1, pool.acquire() as observer:
        tr1 = c1.transaction()
        await tr1.start()
        try:
            await Repository(c1).vm(world.vm1.id, lock=True)
            await Repository(c1).insert_nic(new_nic(world.vm1, "eth0", pool_mac(7), world.profile))
            task = asyncio.create_task(
                nics.add_nic(ctx, USER, world.vm1.id, NicFields(name="eth0", profile_id=world.profile.id))
            )
            waiting = await waiting_backend(observer)
            await blocked_by(observer, waiting, c1.get_server_pid())
            assert not task.done()
            await tr1.commit()
        except BaseException:
            await tr1.rollback()
            raise
    with pytest.raises(EngineError) as info:
        await asyncio.wait_for(task, 30)
    assert info.value.kind is errors.NIC_NAME_IN_USE
    async with ctx.transaction() as repo:
        assert [(n.name, n.mac) for n in await repo.nics(world.vm1.id)] == [("eth0", pool_mac(7))]


# -- the MAC pool through services.nics.add_nic -----------------------------------------------
async def add(ctx: Context, vm: Vm, name: str, profile: VnicProfile, **kw: object) -> Nic:
    activate = bool(kw.pop("activate", True))
    return await nics.add_nic(ctx, USER, vm.id, NicFields(name=name, profile_id=profile.id, **kw), activate)  # type: ignore[arg-type]


async def add_refused(ctx: Context, kind: ErrorKind, vm: Vm, name: str, profile: VnicProfile, **kw: object) -> None:
    with pytest.raises(EngineError) as info:
        await add(ctx, vm, name, profile, **kw)
    assert info.value.kind is kind, info.value


async def test_add_nic_takes_macs_forward_through_the_pool_as_ovirt(ctx: Context, world: World) -> None:
    p = world.profile
    assert (await add(ctx, world.vm1, "eth0", p)).mac == pool_mac(0)
    # A MAC given by the caller is taken as is (upper case is normalised) and then is not free.
    assert (await add(ctx, world.vm1, "eth1", p, mac=pool_mac(2).upper())).mac == pool_mac(2)
    assert (await add(ctx, world.vm1, "eth2", p)).mac == pool_mac(1)  # the cursor goes on
    assert (await add(ctx, world.vm1, "eth3", p, activate=False)).mac == pool_mac(3)  # past the taken one
    # The pool is shared by every VM.
    assert (await add(ctx, world.vm2, "eth0", p)).mac == pool_mac(4)
    async with ctx.transaction() as repo:
        assert sorted(await repo.used_macs()) == [pool_mac(i) for i in range(5)]
        got = {n.name: (n.mac, n.plugged) for n in await repo.nics(world.vm1.id)}
    assert got == {"eth0": (pool_mac(0), True), "eth1": (pool_mac(2), True), "eth2": (pool_mac(1), True),
                   "eth3": (pool_mac(3), False)}  # fmt: skip


async def test_a_pool_used_from_before_its_cursor_hands_out_the_macs_after_those_in_use(
    ctx: Context, pool: asyncpg.Pool, world: World
) -> None:
    p = world.profile
    for i in range(3):
        await add(ctx, world.vm1, f"old{i}", p, mac=pool_mac(i))
    assert (await add(ctx, world.vm1, "eth0", p)).mac == pool_mac(3)
    async with pool.acquire() as conn:  # another engine moved the cursor back meanwhile
        await conn.execute("SELECT setval('mac_pool_cursor', 0, false)")
    assert (await add(ctx, world.vm1, "eth1", p)).mac == pool_mac(4)


async def test_once_the_pool_is_used_to_its_end_its_gaps_are_handed_out(
    ctx: Context, pool: asyncpg.Pool, world: World
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE mac_pool_ranges SET to_mac = $1::macaddr", pool_mac(3))
    p = world.profile
    await add(ctx, world.vm1, "eth0", p, mac=pool_mac(3))  # the range's last MAC is in use
    assert [(await add(ctx, world.vm1, f"eth{i}", p)).mac for i in (1, 2, 3)] == [pool_mac(i) for i in range(3)]
    await add_refused(ctx, errors.MAC_POOL_EMPTY, world.vm1, "eth4", p)


async def test_a_failed_add_leaves_no_row_and_takes_no_mac(ctx: Context, pool: asyncpg.Pool, world: World) -> None:
    p = world.profile
    assert (await add(ctx, world.vm1, "eth0", p)).mac == pool_mac(0)
    async with pool.acquire() as conn:
        before = await row_counts(conn)

    await add_refused(ctx, errors.NIC_NAME_IN_USE, world.vm1, "eth0", p)  # refused by the rule
    await add_refused(ctx, errors.MAC_IN_USE, world.vm2, "eth9", p, mac=pool_mac(0))  # by the constraint
    await add_refused(ctx, errors.INVALID_MAC, world.vm1, "eth9", p, mac="56:6f:1a:00:00")
    await add_refused(ctx, errors.INVALID_MODEL, world.vm1, "eth9", p, model="ne2k_pci")
    await add_refused(ctx, errors.PROFILE_NOT_FOUND, world.vm1, "eth9", VnicProfile(str(uuid.uuid4()), "x", "y"))
    async with pool.acquire() as conn:
        assert await row_counts(conn) == before
    assert (await add(ctx, world.vm1, "eth1", p)).mac == pool_mac(1)

    # The audit log has the failures, and one 'added' entry per NIC that was added.
    async with ctx.transaction() as repo:
        codes = [e.log_type for e in await repo.audit_entries(world.vm1.id)]
    assert codes.count(nics.ADDED) == 2 and codes.count(nics.ADD_FAILED) == 4


async def test_an_add_refused_after_its_insert_rolls_back_the_mac_too(
    ctx: Context, pool: asyncpg.Pool, world: World
) -> None:
    """Plugging runs after the insert: the PCI budget refusal must take the new row (and its MAC) back."""
    p = world.profile
    for i in range(PCI_DEVICE_BUDGET):
        assert (await add(ctx, world.vm1, f"eth{i}", p)).mac == pool_mac(i)
    async with pool.acquire() as conn:
        before = await row_counts(conn)
    await add_refused(ctx, errors.PCI_BUDGET, world.vm1, "one-too-many", p)
    async with pool.acquire() as conn:
        assert await row_counts(conn) == before
    spare = await add(ctx, world.vm1, "spare", p, activate=False)
    # The cursor moved past the refused add's MAC (a sequence does not roll back, as oVirt's pool
    # moves on): that MAC is not in use, and waits among the gaps for the pool's end.
    assert (spare.mac, spare.plugged) == (pool_mac(PCI_DEVICE_BUDGET + 1), False)
    async with ctx.transaction() as repo:
        assert pool_mac(PCI_DEVICE_BUDGET) not in await repo.used_macs()


async def test_an_exhausted_pool_refuses_the_add_and_keeps_nothing(
    ctx: Context, pool: asyncpg.Pool, world: World
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE mac_pool_ranges SET from_mac = $1, to_mac = $2", pool_mac(0), pool_mac(1))
    p = world.profile
    assert [(await add(ctx, world.vm1, f"eth{i}", p)).mac for i in range(2)] == [pool_mac(0), pool_mac(1)]
    async with pool.acquire() as conn:
        before = await row_counts(conn)
    await add_refused(ctx, errors.MAC_POOL_EMPTY, world.vm2, "eth0", p)
    async with pool.acquire() as conn:
        assert await row_counts(conn) == before
    # A NIC removed gives its MAC back.
    async with ctx.transaction() as repo:
        eth0 = next(n for n in await repo.nics(world.vm1.id) if n.name == "eth0")
    await nics.remove_nic(ctx, USER, world.vm1.id, eth0.id)
    assert (await add(ctx, world.vm2, "eth0", p)).mac == pool_mac(0)


# -- races and half-done changes (regression tests for bugs found in b1f8986's engine/services/nics.py) --
async def test_an_add_racing_twenty_uncommitted_adds_still_gets_a_free_mac(
    ctx: Context, pool: asyncpg.Pool, world: World
) -> None:
    """What 21 concurrent adds on 21 VMs (e.g. two engines, each NIC being hot-plugged on its host
    while its transaction holds the new MAC) look like to the last one: 20 other transactions have
    inserted the 20 lowest MACs and not committed yet; they commit while it waits.  (_insert_with_mac
    used to give up after 20 taken candidates: MAC_POOL_EXHAUSTED with 65k free MACs.)"""
    holders = [await pool.acquire() for _ in range(20)]
    observer = await pool.acquire()
    transactions = []
    try:
        for i, conn in enumerate(holders):
            tr = conn.transaction()
            await tr.start()
            transactions.append(tr)
            await Repository(conn).insert_nic(new_nic(world.vm2, f"held{i}", pool_mac(i), world.profile))
        task = asyncio.create_task(add(ctx, world.vm1, "eth0", world.profile))
        # It took its candidates (none of the uncommitted MACs is 'used' yet) and now waits on the
        # unique index entry of the first one.
        waiting = await waiting_backend(observer)
        await blocked_by(observer, waiting, holders[0].get_server_pid())
        for tr in transactions:
            await tr.commit()
        transactions.clear()
        added = await asyncio.wait_for(task, 30)
    finally:
        for tr in transactions:
            await tr.rollback()
        for conn in [*holders, observer]:
            await pool.release(conn)
    assert added.mac == pool_mac(20)


async def test_an_update_whose_plug_is_refused_changes_nothing(ctx: Context, world: World) -> None:
    """PUT {name, linked, plugged: true} when the plug is refused (the PCI budget is spent): nothing
    changes.  (update_nic used to commit the fields, then plug in a second transaction.)"""
    p = world.profile
    for i in range(PCI_DEVICE_BUDGET):
        await add(ctx, world.vm1, f"eth{i}", p)
    spare = await add(ctx, world.vm1, "spare", p, activate=False)
    with pytest.raises(EngineError) as info:
        await nics.update_nic(ctx, USER, world.vm1.id, spare.id, NicFields(name="renamed", linked=False), True)
    assert info.value.kind is errors.PCI_BUDGET
    async with ctx.transaction() as repo:
        after = await repo.nic(world.vm1.id, spare.id)
        logged = [e.log_type for e in await repo.audit_entries(world.vm1.id) if e.nic_id == spare.id]
    assert (after.name, after.linked, after.plugged) == ("spare", True, False)
    assert logged == [nics.UPDATE_FAILED, nics.ADDED]  # newest first; no 'updated'


async def test_lists_page_in_name_order_and_search_names_case_insensitively(ctx: Context, world: World) -> None:
    for name in ("web-02", "web-01", "db-01"):
        await vms.add_vm(ctx, USER, Vm(id="", name=name, cluster_id=world.vm1.cluster_id, os_type="rhel_6x64",
                                       status="down", memory_bytes=128 * 1024 * 1024))  # fmt: skip
    fields = ("name", "status")

    def asked(text: str, max_results: str | None = None) -> search.Search:
        return search.parse(text, collection="VMs", fields=fields, max_results=max_results)

    async with ctx.transaction() as repo:
        pages = [[v.name for v in await repo.vms(asked(f"page {n}", "2"))] for n in (1, 2, 3)]
        webs = [v.name for v in await repo.vms(asked("name=WEB-*"))]
    assert pages == [["db-01", "vm1"], ["vm2", "web-01"], ["web-02"]]
    assert webs == ["web-01", "web-02"]
