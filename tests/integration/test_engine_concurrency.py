"""Two real engine processes on one PostgreSQL database, hammering one down VM at the same time.

Nothing here may depend on the order in which the requests happen to run: the checks compare the
final database, the audit log and the answers with what *any* serialisation of the requests
would give.  Where order matters, it is real-time order: a request that started after another
one's answer arrived ran after it.  All VMs are down, so no host is called.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from devtools.engine_proc import EngineClient, run_engine
from engine.adapters import migrations
from engine.adapters.repository import Repository
from engine.domain import errors
from engine.domain.macpool import int_to_mac, mac_to_int
from engine.domain.model import Version, Vm
from engine.services import inventory, nics, vms
from engine.services.context import Context
from engine.services.hosts_calls import HostCalls
from engine.services.nics import NicFields
from tests.fakes import ScriptedAgent
from tests.integration.test_migrations import SCHEMA_SNAPSHOT

PASSWORD = "secret"
POOL_START = "56:6f:1a:00:00:00"  # the first MAC of sql/0001's default mac_pool_ranges row
ADDED, ADD_FAILED, REMOVED, UPDATED = nics.ADDED, nics.ADD_FAILED, nics.REMOVED, nics.UPDATED
PLUGGED, UNPLUGGED = nics.PLUGGED, nics.UNPLUGGED


def pool_mac(n: int) -> str:
    return int_to_mac(mac_to_int(POOL_START) + n)


@asynccontextmanager
async def two_engines(output_dir: Path, database_url: str) -> AsyncIterator[tuple[EngineClient, EngineClient]]:
    """Started one after the other: the second finds the schema migrated."""
    log_dir = output_dir / "integration"
    async with (
        run_engine(log_dir, database_url, PASSWORD) as first,
        run_engine(log_dir, database_url, PASSWORD) as second,
    ):
        yield first, second


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


async def schema_state(database_url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    history = await query(
        database_url, "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
    )
    return [tuple(r) for r in history], [tuple(r) for r in await query(database_url, SCHEMA_SNAPSHOT)]


async def setup_vm(api: EngineClient, vm_names: list[str]) -> tuple[str, list[str]]:
    """A 4.7 cluster with one network: (the id of its vNIC profile, the ids of down rhel_6x64 VMs)."""
    cluster = await api.ok("POST", "/clusters", {"name": "c1", "version": {"major": 4, "minor": 7}})
    network = await api.ok("POST", "/networks", {"name": "net1", "cluster": {"id": cluster["id"]}, "bridge": "br-test"})
    profiles = (await api.ok("GET", "/vnicprofiles"))["vnic_profile"]
    profile = next(p for p in profiles if p["network"]["id"] == network["id"])
    vm_ids = []
    for name in vm_names:
        vm = await api.ok("POST", "/vms", {"name": name, "cluster": {"id": cluster["id"]},
                                           "os": {"type": "rhel_6x64"}, "memory": 128 * 1024 * 1024})  # fmt: skip
        assert vm["status"] == "down"
        vm_ids.append(vm["id"])
    return profile["id"], vm_ids


async def db_nics(database_url: str, vm_id: str) -> dict[str, asyncpg.Record]:
    rows = await query(
        database_url,
        "SELECT id::text AS id, name, mac_addr::text AS mac, linked, active FROM vm_interface_view WHERE vm_id = $1",
        vm_id,
    )
    return {r["id"]: r for r in rows}


async def events(api: EngineClient, database_url: str, vm_id: str) -> list[dict[str, Any]]:
    """The VM's audit log through the API (newest first), checked to be complete (the API caps at 200)."""
    found: list[dict[str, Any]] = (await api.ok("GET", f"/events?vm={vm_id}"))["event"]
    (total,) = await query(database_url, "SELECT count(*) AS n FROM audit_log WHERE vm_id = $1", vm_id)
    assert len(found) == total["n"], "the events answer was cut short; make the test smaller"
    assert [int(e["id"]) for e in found] == sorted((int(e["id"]) for e in found), reverse=True)
    return found


# -- migrations ------------------------------------------------------------------------------
async def test_the_second_engine_finds_the_schema_migrated_and_changes_nothing(
    database_url: str, output_dir: Path
) -> None:
    files = migrations.packaged()
    async with run_engine(output_dir / "integration", database_url, PASSWORD) as first:
        before = await schema_state(database_url)
        assert [row[1] for row in before[0]] == [m.name for m in files]
        assert [row[2] for row in before[0]] == [m.checksum for m in files]
        async with run_engine(output_dir / "integration", database_url, PASSWORD) as second:
            assert await schema_state(database_url) == before  # same rows, same applied_at
            # One database behind both: what one makes, the other serves (tokens included).
            cluster = await first.ok("POST", "/clusters", {"name": "c1"})
            assert (await second.ok("GET", f"/clusters/{cluster['id']}"))["name"] == "c1"
            status, _ = await EngineClient(second.base, second.session, first.token).request("GET", "/clusters")
            assert status == 200
        assert await schema_state(database_url) == before


async def test_two_engines_starting_at_once_apply_each_migration_once(database_url: str, output_dir: Path) -> None:
    files = migrations.packaged()
    async with AsyncExitStack() as stack:
        engines = await asyncio.gather(
            *(stack.enter_async_context(run_engine(output_dir / "integration", database_url, PASSWORD))
              for _ in range(2))
        )  # fmt: skip
        history, _ = await schema_state(database_url)
        assert [(row[1], row[2]) for row in history] == [(m.name, m.checksum) for m in files]
        for api in engines:
            assert (await api.ok("GET", "/clusters"))["cluster"] == []


# -- concurrent adds -------------------------------------------------------------------------
async def test_concurrent_adds_of_one_name_have_exactly_one_winner(database_url: str, output_dir: Path) -> None:
    names, tries = [f"dup{i}" for i in range(5)], 8
    async with two_engines(output_dir, database_url) as engines:
        profile_id, (vm_id,) = await setup_vm(engines[0], ["vm1"])
        requests = [(name, engines[(i + t) % 2]) for t in range(tries) for i, name in enumerate(names)]
        answers = await asyncio.gather(*(
            api.request("POST", f"/vms/{vm_id}/nics", {"name": name, "vnic_profile": {"id": profile_id}})
            for name, api in requests
        ))  # fmt: skip
        log = await events(engines[1], database_url, vm_id)

    winners: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for (name, _), (status, body) in zip(requests, answers, strict=True):
        if status == 201:
            winners[name].append(body)
        else:
            assert (status, body["code"]) == (409, errors.NIC_NAME_IN_USE.name), (name, status, body)
    assert {name: len(won) for name, won in winners.items()} == dict.fromkeys(names, 1)
    created = {won[0]["id"]: won[0] for won in winners.values()}

    in_db = await db_nics(database_url, vm_id)
    assert {r["name"] for r in in_db.values()} == set(names) and set(in_db) == set(created)
    # The losers took no MAC: the winners hold the lowest ones, all different.
    assert sorted(r["mac"] for r in in_db.values()) == [pool_mac(i) for i in range(len(names))]
    assert {i: r["mac"] for i, r in in_db.items()} == {i: n["mac"]["address"] for i, n in created.items()}
    assert all(r["active"] for r in in_db.values())  # default activate on a down VM: the flag only

    codes = Counter(e["code"] for e in log)
    assert sorted(e["nic"]["id"] for e in log if e["code"] == ADDED) == sorted(created)
    assert codes[ADD_FAILED] == len(requests) - len(names)


async def test_concurrent_adds_without_a_mac_get_distinct_macs(database_url: str, output_dir: Path) -> None:
    """24 VMs, two adds each, all at once through both engines: each VM's adds queue on its row
    lock while up to 24 transactions race each other for the pool's lowest MACs.  (b1f8986 gave up
    after 20 taken candidates: a quarter of these answered 409 MAC_POOL_EXHAUSTED.)"""
    vm_count, per_vm = 24, 2
    async with two_engines(output_dir, database_url) as engines:
        profile_id, vm_ids = await setup_vm(engines[0], [f"vm{i}" for i in range(vm_count)])
        requests = [(vm_id, f"eth{i}", engines[(i + v) % 2]) for i in range(per_vm) for v, vm_id in enumerate(vm_ids)]
        answers = await asyncio.gather(*(
            api.request("POST", f"/vms/{vm_id}/nics", {"name": name, "vnic_profile": {"id": profile_id},
                                                       "plugged": False})
            for vm_id, name, api in requests
        ))  # fmt: skip
        logs = [await events(engines[0], database_url, vm_id) for vm_id in vm_ids]

    refused = Counter((status, body.get("code")) for status, body in answers if status != 201)
    assert not refused, refused
    added = [body for _, body in answers]
    assert sorted(a["mac"]["address"] for a in added) == [pool_mac(i) for i in range(len(requests))]  # none skipped
    for vm_id, log in zip(vm_ids, logs, strict=True):
        in_db = await db_nics(database_url, vm_id)
        assert sorted(r["name"] for r in in_db.values()) == [f"eth{i}" for i in range(per_vm)]
        assert not any(r["active"] for r in in_db.values())
        mine = {a["id"]: a["mac"]["address"] for a in added if a["vm"]["id"] == vm_id}
        assert {i: r["mac"] for i, r in in_db.items()} == mine
        assert sorted(e["nic"]["id"] for e in log if e["code"] == ADDED) == sorted(mine)


# -- the storm: every kind of change on the same NICs at once ----------------------------------
@dataclass
class Call:
    kind: str  # add, activate, deactivate, plug_put, rename, link, delete
    engine: int
    nic: str | None = None  # the target NIC's id (None for add)
    value: Any = None  # the name (add, rename) or the flag (linked, plugged) it sets
    start: float = 0.0
    end: float = 0.0
    status: int = 0
    answer: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str:
        return str(self.answer.get("code", "")) if isinstance(self.answer, dict) else ""

    def __str__(self) -> str:
        return f"{self.kind}({self.nic}, {self.value!r}) via engine {self.engine} -> {self.status} {self.code}"


@dataclass
class Storm:
    vm_id: str
    profile_id: str
    engines: tuple[EngineClient, EngineClient]
    created: dict[str, dict[str, Any]] = field(default_factory=dict)  # NIC id -> the add's answer
    calls: list[Call] = field(default_factory=list)

    async def perform(self, call: Call) -> None:
        api, base = self.engines[call.engine], f"/vms/{self.vm_id}/nics"
        method, path, body = {
            "add": ("POST", base, {"name": call.value, "vnic_profile": {"id": self.profile_id}}),
            "activate": ("POST", f"{base}/{call.nic}/activate", None),
            "deactivate": ("POST", f"{base}/{call.nic}/deactivate", None),
            "plug_put": ("PUT", f"{base}/{call.nic}", {"plugged": call.value}),
            "rename": ("PUT", f"{base}/{call.nic}", {"name": call.value}),
            "link": ("PUT", f"{base}/{call.nic}", {"linked": call.value}),
            "delete": ("DELETE", f"{base}/{call.nic}", None),
        }[call.kind]
        call.start = time.monotonic()
        call.status, call.answer = await api.request(method, path, body)
        call.end = time.monotonic()

    async def run_script(self, script: list[Call]) -> None:
        for call in script:
            await self.perform(call)


def possible_last(writes: list[tuple[Call, Any]], initial: Any) -> set[Any]:
    """The values the last of these successful writes may have left: a write is not the last one
    if another write began after its answer came back."""
    if not writes:
        return {initial}
    return {value for call, value in writes if not any(other.start > call.end for other, _ in writes)}


def plug_target(call: Call) -> bool | None:
    return {"activate": True, "deactivate": False, "plug_put": call.value}.get(call.kind)


def check_answer(call: Call) -> None:
    """Each answer is a success of the right shape or one of the refusals the race allows."""
    allowed = {
        "add": {(201, "")},
        "delete": {(200, ""), (404, errors.NIC_NOT_FOUND.name)},
        "rename": {(200, ""), (404, errors.NIC_NOT_FOUND.name), (409, errors.NIC_NAME_IN_USE.name)},
    }.get(call.kind, {(200, ""), (404, errors.NIC_NOT_FOUND.name)})
    assert (call.status, "" if call.ok else call.code) in allowed, f"{call}: {call.answer}"
    if not call.ok:
        return
    nic = call.answer.get("nic", call.answer)
    if plug_target(call) is not None:
        assert nic["plugged"] is plug_target(call), f"{call}: {call.answer}"
    elif call.kind in ("rename", "add"):
        assert nic["name"] == call.value, f"{call}: {call.answer}"
    elif call.kind == "link":
        assert nic["linked"] is call.value, f"{call}: {call.answer}"


def make_scripts(storm: Storm, rng: random.Random, scripts: int, length: int) -> list[list[Call]]:
    targets = list(storm.created)
    hot = targets[:4]  # most requests go to these
    doomed = [targets[3], *targets[5:]]  # the only ones deleted: one hot, three cold
    original_names = [n["name"] for n in storm.created.values()]
    kinds = ["activate"] * 3 + ["deactivate"] * 3 + ["rename"] * 2 + ["link"] * 2 + ["plug_put", "delete", "add"]
    out, serial = [], 0
    for _ in range(scripts):
        script = []
        for _ in range(length):
            serial += 1
            kind, engine = rng.choice(kinds), serial % 2
            target = rng.choice(hot) if rng.random() < 0.6 else rng.choice(targets)
            if kind == "delete":
                target = rng.choice(doomed)
            if kind == "add":
                script.append(Call("add", engine, value=f"new{serial}"))
            elif kind == "rename":
                # Half of them want a name another NIC starts with: those conflict until it moves.
                name = rng.choice(original_names) if rng.random() < 0.5 else f"r{serial}"
                script.append(Call("rename", engine, target, name))
            elif kind in ("link", "plug_put"):
                script.append(Call(kind, engine, target, rng.random() < 0.5))
            else:
                script.append(Call(kind, engine, target))
        out.append(script)
    return out


async def test_a_storm_of_conflicting_changes_leaves_what_the_answers_say(database_url: str, output_dir: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    async with two_engines(output_dir, database_url) as engines:
        profile_id, (vm_id,) = await setup_vm(engines[0], ["vm1"])
        storm = Storm(vm_id, profile_id, engines)
        for i in range(8):  # n0..n7, the even ones plugged
            nic = await engines[i % 2].ok(
                "POST", f"/vms/{vm_id}/nics", {"name": f"n{i}", "vnic_profile": {"id": profile_id},
                                               "plugged": i % 2 == 0},
            )  # fmt: skip
            storm.created[nic["id"]] = nic
        scripts = make_scripts(storm, rng, scripts=20, length=4)
        await asyncio.gather(*(storm.run_script(s) for s in scripts))
        storm.calls = [c for s in scripts for c in s]
        log = await events(engines[1], database_url, vm_id)
        listed = {n["id"]: n for n in (await engines[0].ok("GET", f"/vms/{vm_id}/nics"))["nic"]}
    in_db = await db_nics(database_url, vm_id)
    context = f"seed {seed}:\n" + "\n".join(map(str, storm.calls))

    for call in storm.calls:
        check_answer(call)
    initial = dict(storm.created)  # NIC id -> the add's answer, storm adds included
    for call in storm.calls:
        if call.kind == "add":
            initial[call.answer["id"]] = call.answer
            call.nic = call.answer["id"]
    by_nic: dict[str, list[Call]] = {nic_id: [c for c in storm.calls if c.nic == nic_id] for nic_id in initial}

    # Deleted NICs: one DELETE won; they are gone; nothing that began after it succeeded; a NIC
    # nobody deleted never answered 404.
    deleted: dict[str, Call] = {}
    for nic_id, calls in by_nic.items():
        won = [c for c in calls if c.kind == "delete" and c.ok]
        assert len(won) <= 1, context
        if won:
            deleted[nic_id] = won[0]
            later = [c for c in calls if c.start > won[0].end]
            assert all(c.status == 404 for c in later), f"{[str(c) for c in later]}\n{context}"
            assert all(c.start < won[0].end for c in calls if c.ok), context
        else:
            assert all(c.status != 404 for c in calls), context
    assert set(in_db) == set(initial) - set(deleted), context
    assert listed.keys() == in_db.keys()

    # What is left: names unique, MACs distinct, and each field as the last successful change left it.
    assert len({r["name"] for r in in_db.values()}) == len(in_db), context
    assert len({r["mac"] for r in in_db.values()}) == len(in_db), context
    for nic_id, row in in_db.items():
        calls, start = by_nic[nic_id], initial[nic_id]
        assert row["mac"] == start["mac"]["address"]
        names = possible_last([(c, c.value) for c in calls if c.kind == "rename" and c.ok], start["name"])
        linked = possible_last([(c, c.value) for c in calls if c.kind == "link" and c.ok], start["linked"])
        plugged = possible_last([(c, plug_target(c)) for c in calls if plug_target(c) is not None and c.ok],
                                start["plugged"])  # fmt: skip
        assert row["name"] in names, f"{row} not in {names}\n{context}"
        assert row["linked"] in linked, f"{row} not in {linked}\n{context}"
        assert row["active"] in plugged, f"{row} not in {plugged}\n{context}"
        assert (listed[nic_id]["name"], listed[nic_id]["plugged"]) == (row["name"], row["active"])

    # The audit log: one 'added' per NIC created, one 'removed' per NIC deleted, one error entry
    # per refused request, no more 'updated' entries than successful updates.
    assert Counter(e["nic"]["id"] for e in log if e["code"] == ADDED) == Counter(initial.keys()), context
    assert Counter(e["nic"]["id"] for e in log if e["code"] == REMOVED) == Counter(deleted.keys()), context
    failed = [c for c in storm.calls if not c.ok]
    assert sum(e["severity"] == "error" for e in log) == len(failed), context
    for nic_id in initial:
        updates = [c for c in by_nic[nic_id] if c.kind in ("rename", "link") and c.ok]
        assert sum(e["code"] == UPDATED and e["nic"]["id"] == nic_id for e in log) <= len(updates), context
    # Plug entries: each one is a change (a NIC starts unplugged; an add that plugs logs it), so
    # they alternate, and the newest one is the state in the database.
    for nic_id in initial:
        state = False
        for entry in reversed(log):  # oldest first
            if entry["code"] in (PLUGGED, UNPLUGGED) and entry["nic"]["id"] == nic_id:
                assert (entry["code"] == PLUGGED) != state, f"{nic_id}: {entry} repeats the state\n{context}"
                state = entry["code"] == PLUGGED
        if nic_id in in_db:
            assert in_db[nic_id]["active"] == state, f"{nic_id}: the log says plugged={state}\n{context}"
    # Successful changes are logged in their own transaction, under the VM lock: the newest
    # success entry of a NIC carries its current name.
    for nic_id, row in in_db.items():
        newest = next(e for e in log if e["severity"] == "normal" and e.get("nic", {}).get("id") == nic_id)
        assert newest["nic"]["name"] == row["name"], f"{newest} vs {row}\n{context}"


async def test_the_newest_plug_entry_of_the_audit_log_is_the_nic_state(migrated_database_url: str) -> None:
    """An activate whose audit write is held up (as a busy pool or a slow event loop would) while a
    deactivate of the same NIC is asked for: the deactivate must wait for the activate, entry and
    all, so that the newest entry is the NIC's state.  (set_plugged used to log after its commit,
    in a transaction of its own: the deactivate finished first and the activate logged last.)"""
    pool = await asyncpg.create_pool(migrated_database_url, min_size=1, max_size=10)
    gate, held = asyncio.Event(), asyncio.Event()

    class SlowAuditRepository(Repository):
        async def audit(self, log_type: int, *args: Any, **kwargs: Any) -> None:
            if log_type == PLUGGED and not gate.is_set():
                held.set()
                await gate.wait()
            await super().audit(log_type, *args, **kwargs)

    class SlowAuditContext(Context):
        @asynccontextmanager
        async def transaction(self) -> AsyncIterator[Repository]:
            async with self.pool.acquire() as conn, conn.transaction():
                yield SlowAuditRepository(conn)

    ctx = SlowAuditContext(pool, HostCalls(ScriptedAgent()))
    try:
        cluster = await inventory.add_cluster(ctx, "c1", Version(4, 7))
        _, profile = await inventory.add_network(ctx, "net1", cluster_id=cluster.id, bridge="br-test")
        vm = await vms.add_vm(ctx, "admin@internal", Vm(id="", name="vm1", cluster_id=cluster.id,
                                                        os_type="rhel_6x64", status="down",
                                                        memory_bytes=128 * 1024 * 1024))  # fmt: skip
        nic = await nics.add_nic(ctx, "admin@internal", vm.id, NicFields(name="eth0", profile_id=profile.id), False)
        activating = asyncio.create_task(nics.set_plugged(ctx, "admin@internal", vm.id, nic.id, True))
        await asyncio.wait_for(held.wait(), 30)  # the activate is writing its 'plugged' entry
        deactivating = asyncio.create_task(nics.set_plugged(ctx, "admin@internal", vm.id, nic.id, False))
        await asyncio.wait([deactivating], timeout=2)  # long enough to finish, were it not made to wait
        gate.set()
        assert (await asyncio.wait_for(activating, 30)).plugged is True
        assert (await asyncio.wait_for(deactivating, 30)).plugged is False
        async with ctx.transaction() as repo:
            state = (await repo.nic(vm.id, nic.id)).plugged
            newest = next(e for e in await repo.audit_entries(vm.id) if e.log_type in (PLUGGED, UNPLUGGED))
    finally:
        await pool.close()
    assert state is False
    assert newest.log_type == UNPLUGGED
