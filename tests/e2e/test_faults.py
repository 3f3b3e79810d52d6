"""The fault suite: the real engine, agent, PostgreSQL, libvirtd and guest, broken on purpose
while NICs are plugged and unplugged, and nothing lost.

Each fault is injected while a client keeps activating and deactivating the NICs of a running
VM; afterwards the engine must converge by itself: 0 differences between its database and
``virsh dumpxml`` (MACs, plugged, PCI addresses), 0 lost NIC rows, 0 duplicate MACs or
addresses, and an empty operations journal.  ``make test`` injects each fault a few times
(kill -9 of the agent and of the engine 5 times each); ``make torture`` (HOTPLUG_TORTURE=1)
50 times.  Every answer the client gets meanwhile is a success or a fault that says why —
never a 500.  The counts and times go to test-output/reliability/faults.json, from which
``make torture`` refreshes docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from devtools import guest
from devtools.agent_proc import AgentClient, free_port, run_agent
from devtools.engine_proc import EngineClient, run_engine
from devtools.pg import Cluster
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup, boot_vm
from tests.e2e.test_engine_story import live_macs

TORTURE = os.environ.get("HOTPLUG_TORTURE") == "1"
# How many times each fault is injected: make test / make torture.
ROUNDS = {
    "kill -9 of the agent": (5, 50),
    "kill -9 of the engine": (5, 50),
    "host unreachable mid-operation (agent frozen)": (2, 10),
    "PostgreSQL restart under load": (1, 5),
    "libvirtd restart under the agent": (1, 5),
    "a guest that never acknowledges an unplug": (1, 3),
    "VM destroyed behind the engine's back, started again": (1, 5),
}
ENGINE_SETTINGS = {"monitor_interval": "1", "lease_ttl": "3", "poll_timeout": "2", "missed_polls": "2",
                   "host_timeout": "8"}  # fmt: skip
AGENT_SETTINGS = {"unplug_timeout": "4", "unplug_retry_interval": "1"}
CONVERGES_WITHIN = 30.0  # seconds: a liveness bound, not a speed target (the table has the times)
NICS = ("f1", "f2", "f3")
SEED = int(os.environ.get("HOTPLUG_FAULT_SEED", "0")) or random.randrange(1, 10**6)
RESULTS: dict[str, dict[str, Any]] = {}


def rounds(fault: str) -> int:
    return ROUNDS[fault][1 if TORTURE else 0]


@dataclass
class Stack:
    """An engine and an agent that this module starts, kills and starts again, on one database."""

    database_url: str
    log_dir: Path
    agent_port: int
    api: EngineClient | None = None
    agent: AgentClient | None = None
    _engine: AsyncExitStack = field(default_factory=AsyncExitStack)
    _agent: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def start_agent(self) -> None:
        self._agent = AsyncExitStack()
        self.agent = await self._agent.enter_async_context(
            run_agent(self.log_dir, port=self.agent_port, **AGENT_SETTINGS)
        )

    async def start_engine(self) -> EngineClient:
        self._engine = AsyncExitStack()
        self.api = await self._engine.enter_async_context(
            run_engine(self.log_dir, self.database_url, ADMIN_PASSWORD, **ENGINE_SETTINGS)
        )
        return self.api

    async def kill_agent(self) -> None:
        assert self.agent is not None
        await _kill(self.agent.process.pid)
        await self.agent.process.wait()
        await self._agent.aclose()

    async def kill_engine(self) -> None:
        assert self.api is not None
        await _kill(self.api.pid)
        with contextlib.suppress(ProcessLookupError):
            await self._engine.aclose()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._engine.aclose()
        with contextlib.suppress(Exception):
            await self._agent.aclose()


async def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):  # until the child watcher has reaped it
        if not Path(f"/proc/{pid}").exists():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)


@dataclass
class Faulty:
    stack: Stack
    setup: EngineSetup
    vm_id: str
    nic_ids: dict[str, str]  # name -> id
    console: Path


@pytest.fixture(scope="module")
async def faulty(pg_cluster: Cluster, bridge: str, output_dir: Path) -> AsyncIterator[Faulty]:
    """A VM booted on this module's own engine and agent, with three NICs to plug and unplug."""
    database_url = pg_cluster.create_database(f"e2e_faults_{os.getpid()}")
    stack = Stack(database_url, output_dir / "e2e", free_port())
    await stack.start_agent()
    api = await stack.start_engine()
    try:
        cluster = await api.ok("POST", "/clusters", {"name": "faults", "version": {"major": 4, "minor": 7}})
        host = await api.ok("POST", "/hosts", {"name": "fault-host", "address": "127.0.0.1", "port": stack.agent_port,
                                               "cluster": {"id": cluster["id"]}})  # fmt: skip
        network = await api.ok("POST", "/networks", {"name": "faults", "bridge": bridge,
                                                     "cluster": {"id": cluster["id"]}})  # fmt: skip
        profile = next(p for p in (await api.ok("GET", "/vnicprofiles"))["vnic_profile"]
                       if p["network"]["id"] == network["id"])  # fmt: skip
        assert stack.agent is not None
        setup = EngineSetup(api, stack.agent, cluster["id"], host["id"], network["id"], profile["id"], database_url)
        vm = await boot_vm(setup, "faulty", [{"name": name, "interface": "virtio"} for name in NICS])
        nics = {n["name"]: n["id"] for n in (await api.ok("GET", f"/vms/{vm['id']}/nics"))["nic"]}
        await asyncio.sleep(2)  # the guest's virtio driver, loaded at boot, settles
        yield Faulty(stack, setup, vm["id"], nics, vm["console"])
        with contextlib.suppress(Exception):
            await stack.api.ok("POST", f"/vms/{vm['id']}/stop") if stack.api else None
    finally:
        await stack.close()
        _write_results(output_dir)


# -- what must hold after every fault ------------------------------------------------------------
async def differences(f: Faulty) -> list[str]:
    """Everything on which the database and the host disagree, and every lost or doubled row."""
    conn = await asyncpg.connect(f.stack.database_url)
    try:
        rows = await conn.fetch(
            """SELECT i.id::text AS id, i.name, i.mac_addr::text AS mac, d.is_plugged, d.address
               FROM vm_interface i JOIN vm_device d ON d.device_id = i.id WHERE i.vm_id = $1""",
            f.vm_id,
        )
        status = await conn.fetchval("SELECT status FROM vms WHERE id = $1", f.vm_id)
        doubled_macs = await conn.fetchval(
            "SELECT count(*) FROM (SELECT mac_addr FROM vm_interface GROUP BY mac_addr HAVING count(*) > 1) x"
        )
        open_ops = await conn.fetchval("SELECT count(*) FROM host_operations WHERE vm_id = $1", f.vm_id)
    finally:
        await conn.close()
    found = []
    if {r["id"] for r in rows} != set(f.nic_ids.values()):
        found.append(f"NIC rows lost or added: {sorted(r['name'] for r in rows)}")
    if doubled_macs:
        found.append(f"{doubled_macs} MAC addresses used twice in the database")
    if open_ops:
        found.append(f"{open_ops} operations still open in the journal")
    live = await asyncio.to_thread(live_macs, None, f.vm_id) if status != "down" else {}
    for r in rows:
        on_host = live.get(r["mac"])
        if r["is_plugged"] and on_host is None:
            found.append(f"{r['name']}: plugged in the database, not on the host")
        elif not r["is_plugged"] and on_host is not None:
            found.append(f"{r['name']}: on the host at {on_host}, unplugged in the database")
        elif on_host is not None and _pci(r["address"]) != on_host:
            found.append(f"{r['name']}: at {on_host} on the host, {r['address'] or 'nowhere'} in the database")
    ours = {r["mac"] for r in rows}
    found += [f"a NIC on the host the engine does not know: {mac}" for mac in live if mac not in ours]
    addresses = list(live.values())
    if len(addresses) != len(set(addresses)):
        found.append(f"PCI addresses used twice on the host: {addresses}")
    return found


def _pci(stored: str) -> str | None:
    return stored or None  # the database keeps PciAddress text: 0000:00:03.0


async def converged(f: Faulty) -> tuple[float, list[str]]:
    """Seconds until 0 differences, and the differences seen first."""
    started, first = time.monotonic(), await differences(f)
    found = first
    while found:
        if time.monotonic() - started > CONVERGES_WITHIN:
            raise AssertionError(f"not converged within {CONVERGES_WITHIN:.0f} s: {found}")
        await asyncio.sleep(0.1)
        found = await differences(f)
    return time.monotonic() - started, first


def record(fault: str, injected: int, apart: int, times: list[float], note: str = "") -> None:
    """One row of docs/reliability.md (devtools/reliability.py renders it)."""
    median = statistics.median(times) if times else 0.0
    row = {
        "what": fault,
        "injected": injected,
        "apart_right_after": apart,
        "left": 0,  # every round converged, or the test failed before this line
        "converge": f"median {median:.2f} s, max {max(times, default=0.0):.2f} s",
        "note": note,
    }
    RESULTS[fault] = row
    print(f"{fault}: {injected} injected, {apart} left the two sides apart, converged in {row['converge']}  {note}")


def _write_results(output_dir: Path) -> None:
    folder = output_dir / "reliability"
    folder.mkdir(parents=True, exist_ok=True)
    answer = {"suite": "faults", "torture": TORTURE, "seed": SEED, "rows": list(RESULTS.values())}
    (folder / "faults.json").write_text(json.dumps(answer, indent=2))


# -- the load: a client that keeps plugging and unplugging ----------------------------------------
@dataclass
class Churn:
    """Activate / deactivate random NICs until stopped; every answer is checked."""

    f: Faulty
    rng: random.Random
    statuses: list[int] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    in_flight: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self.stopped.is_set():
            api = self.f.stack.api
            nic_id = self.f.nic_ids[self.rng.choice(NICS)]
            action = self.rng.choice(("activate", "deactivate"))
            self.in_flight = True
            try:
                assert api is not None
                status, body = await api.request("POST", f"/vms/{self.f.vm_id}/nics/{nic_id}/{action}", {})
            except (aiohttp.ClientError, TimeoutError, RuntimeError):  # RuntimeError: its client closed
                status, body = 0, None  # the engine is gone: no answer at all
                await asyncio.sleep(0.1)
            finally:
                self.in_flight = False
            self.statuses.append(status)
            if status >= 400:
                self.faults.append(body)
                await asyncio.sleep(0.05)

    def check(self) -> None:
        """No 500; every fault says why, in oVirt's form."""
        assert 500 not in self.statuses, [b for b in self.faults if b and b.get("code") == "INTERNAL_ERROR"]
        assert set(self.statuses) <= {0, 200, 409, 502, 503}, sorted(set(self.statuses))
        for body in self.faults:
            assert body and body.get("reason") and body.get("detail"), body

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Churn]:
        task = asyncio.create_task(self.run())
        try:
            yield self
        finally:
            self.stopped.set()
            await asyncio.wait_for(task, 60)
        self.check()


async def until_engine_answers(f: Faulty, within: float = 60) -> float:
    started = time.monotonic()
    while True:
        with contextlib.suppress(aiohttp.ClientError, AssertionError, RuntimeError):
            assert f.stack.api is not None
            status, _ = await f.stack.api.request("GET", f"/vms/{f.vm_id}")
            if status == 200:
                return time.monotonic() - started
        assert time.monotonic() - started < within, "the engine never answered again"
        await asyncio.sleep(0.1)


# -- the faults ----------------------------------------------------------------------------------
async def test_kill_9_of_the_agent_at_random_points_of_plug_and_unplug(faulty: Faulty) -> None:
    fault, rng = "kill -9 of the agent", random.Random(SEED)
    times, apart, mid = [], 0, 0
    for _ in range(rounds(fault)):
        async with Churn(faulty, rng).running() as churn:
            await asyncio.sleep(rng.uniform(0.05, 1.0))
            mid += churn.in_flight
            await faulty.stack.kill_agent()
            await asyncio.sleep(0.3)
        await faulty.stack.start_agent()
        took, first = await converged(faulty)
        apart += bool(first)
        times.append(took)
    record(fault, rounds(fault), apart, times, f"{mid} kills while a request was in flight; seed {SEED}")


async def test_kill_9_of_the_engine_at_random_points_of_plug_and_unplug(faulty: Faulty) -> None:
    fault, rng = "kill -9 of the engine", random.Random(SEED + 1)
    times, apart, mid = [], 0, 0
    for _ in range(rounds(fault)):
        async with Churn(faulty, rng).running() as churn:
            await asyncio.sleep(rng.uniform(0.05, 1.0))
            mid += churn.in_flight
            await faulty.stack.kill_engine()
            await faulty.stack.start_engine()  # on the same database; it takes the host when the lease ends
        took, first = await converged(faulty)
        apart += bool(first)
        times.append(took)
    record(fault, rounds(fault), apart, times,
           f"{mid} kills while a request was in flight; includes waiting for the dead engine's host lease "
           f"({ENGINE_SETTINGS['lease_ttl']} s); seed {SEED}")  # fmt: skip


async def test_a_host_unreachable_mid_operation_is_settled_when_it_answers(faulty: Faulty) -> None:
    """The agent freezes (SIGSTOP) while it works: the engine's call times out with 503, the
    host finishes later, and the journal makes the engine follow."""
    fault, rng = "host unreachable mid-operation (agent frozen)", random.Random(SEED + 2)
    times, apart, unknown = [], 0, 0
    agent = faulty.stack.agent
    assert agent is not None
    for _ in range(rounds(fault)):
        async with Churn(faulty, rng).running() as churn:
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            os.kill(agent.process.pid, signal.SIGSTOP)
            try:
                before = len(churn.statuses)
                while len(churn.statuses) == before:  # the request in flight times out
                    await asyncio.sleep(0.1)
            finally:
                os.kill(agent.process.pid, signal.SIGCONT)
        unknown += sum(1 for b in churn.faults if b and "will follow what the host did" in b.get("detail", ""))
        took, first = await converged(faulty)
        apart += bool(first)
        times.append(took)
    record(fault, rounds(fault), apart, times, f"{unknown} answers said the outcome would be followed")


async def test_a_postgresql_restart_under_load_answers_503_and_the_engine_reconnects(
    faulty: Faulty, pg_cluster: Cluster
) -> None:
    fault, rng = "PostgreSQL restart under load", random.Random(SEED + 3)
    times, apart, back, refused = [], 0, [], 0
    for _ in range(rounds(fault)):
        async with Churn(faulty, rng).running() as churn:
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            await asyncio.to_thread(pg_cluster.stop)
            await asyncio.sleep(1.0)  # requests meanwhile get 503
            await asyncio.to_thread(pg_cluster.start)
            back.append(await until_engine_answers(faulty))
        unavailable = [b for b in churn.faults if b and b.get("code") == "DATABASE_UNAVAILABLE"]
        assert all("database cannot be reached" in b["detail"] for b in unavailable)
        refused += len(unavailable)
        took, first = await converged(faulty)
        apart += bool(first)
        times.append(took)
    record(fault, rounds(fault), apart, times,
           f"{refused} requests answered 503 DATABASE_UNAVAILABLE meanwhile; the engine answered again "
           f"{max(back):.1f} s after PostgreSQL was back (at most)")  # fmt: skip


def _restart_libvirtd() -> None:
    """Restart libvirtd as it was started: by systemd, or (dev and CI machines) by make's host set-up."""
    if shutil.which("systemctl") and subprocess.run(["systemctl", "is-active", "--quiet", "libvirtd"]).returncode == 0:
        subprocess.run(["systemctl", "restart", "libvirtd"], check=True)
        return
    pid = int(Path("/run/libvirtd.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    for _ in range(600):  # it closes its guests' monitors first: that may take a while
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    for _ in range(20):  # a start right after the old one left may find its pid file still locked
        started = subprocess.run(["/usr/sbin/libvirtd", "-d"], capture_output=True, text=True)
        if started.returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"libvirtd did not start again: {started.stderr}")
    for _ in range(100):
        if subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError("libvirtd did not come back")


async def _unplug_resends(agent: AgentClient) -> float:
    base = agent.url.rsplit("/", 1)[0]
    async with agent.session.get(base + "/metrics") as resp:
        text = await resp.text()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("vdsm_agent_unplug_resends_total"))  # fmt: skip


async def test_libvirtd_restarted_under_the_agent_it_reconnects_and_keeps_its_event_handlers(
    faulty: Faulty,
) -> None:
    fault, rng = "libvirtd restart under the agent", random.Random(SEED + 4)
    times, apart = [], 0
    agent, api = faulty.stack.agent, faulty.stack.api
    assert agent is not None and api is not None
    for _ in range(rounds(fault)):
        async with Churn(faulty, rng).running():
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            await asyncio.to_thread(_restart_libvirtd)
            await asyncio.sleep(1.0)
        took, first = await converged(faulty)
        apart += bool(first)
        times.append(took)
        # The agent's new connection carries the device events: an unplug ends on DEVICE_REMOVED.
        # Without them every unplug would end only when a re-sent request finds the device gone,
        # so one unplug of three without a re-send proves it (a busy guest may miss one request).
        nic_id, by_event = faulty.nic_ids["f1"], 0
        for _ in range(3):
            await api.ok("POST", f"/vms/{faulty.vm_id}/nics/{nic_id}/activate")
            await asyncio.sleep(1.0)  # the guest's driver takes the new NIC
            resends = await _unplug_resends(agent)
            await api.ok("POST", f"/vms/{faulty.vm_id}/nics/{nic_id}/deactivate")
            by_event += await _unplug_resends(agent) == resends
            if by_event:
                break
        assert by_event, "every unplug needed a re-send: the agent hears no DEVICE_REMOVED event any more"
    assert "connected to libvirtd again" in agent.log.read_text()
    record(fault, rounds(fault), apart, times, "unplug after each restart ended on its DEVICE_REMOVED event")


async def test_a_guest_that_never_acknowledges_an_unplug_leaves_the_nic_plugged_on_both_sides(
    faulty: Faulty,
) -> None:
    """A VM with nothing to boot: its firmware never answers the ACPI eject."""
    fault = "a guest that never acknowledges an unplug"
    api = faulty.stack.api
    assert api is not None
    vm = await api.ok("POST", "/vms", {"name": "silent", "cluster": {"id": faulty.setup.cluster_id},
                                       "memory": 64 * 1024 * 1024, "os": {"type": "rhel_6x64"}})  # fmt: skip
    nic = await api.ok("POST", f"/vms/{vm['id']}/nics", {"name": "s1", "vnic_profile": {"id": faulty.setup.profile_id}})
    await api.ok("POST", f"/vms/{vm['id']}/start")
    silent = Faulty(faulty.stack, faulty.setup, vm["id"], {"s1": nic["id"]}, Path())
    times, apart = [], 0
    try:
        for _ in range(rounds(fault)):
            status, body = await api.request("POST", f"/vms/{vm['id']}/nics/{nic['id']}/deactivate", {})
            assert status == 502 and body["data"]["reason"] == "timeout", body
            assert "did not release" in body["detail"]
            took, first = await converged(silent)
            apart += bool(first)
            times.append(took)
            assert (await api.ok("GET", f"/vms/{vm['id']}/nics/{nic['id']}"))["plugged"] is True
    finally:
        await api.ok("POST", f"/vms/{vm['id']}/stop")
        await api.ok("DELETE", f"/vms/{vm['id']}")
    record(fault, rounds(fault), apart, times, f"502 timeout after the agent's {AGENT_SETTINGS['unplug_timeout']} s")


async def test_a_vm_destroyed_behind_the_engines_back_starts_again_through_the_api(faulty: Faulty) -> None:
    fault = "VM destroyed behind the engine's back, started again"
    api = faulty.stack.api
    assert api is not None
    times, apart = [], 0
    for _ in range(rounds(fault)):
        subprocess.run(["virsh", "-c", "qemu:///system", "destroy", faulty.vm_id], check=True, capture_output=True)
        faulty.console.unlink(missing_ok=True)  # the new boot writes a new one
        started = await api.ok("POST", f"/vms/{faulty.vm_id}/start")  # at once: no waiting for monitoring
        assert started["vm"]["status"] == "up"
        await asyncio.to_thread(guest.wait_for_console, faulty.console, guest.READY_MARKER, 120.0)
        took, first = await converged(faulty)
        apart += bool(first)
        times.append(took)
    record(fault, rounds(fault), apart, times, "start answered 200 at once; the guest booted again")
