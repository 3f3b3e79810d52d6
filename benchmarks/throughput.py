"""Throughput through the whole path: REST → PostgreSQL → JSON-RPC over mTLS → agent.

The agents run the SIMULATED hypervisor (devices in memory, no QEMU): this measures the
engine's and the agents' own cost with many VMs and NICs, which real TCG guests on a 2-core
machine cannot reach.  Every process — the engine with its monitoring, the agents, PostgreSQL
and this load generator — shares the machine.  Concurrent clients each own distinct NICs and
activate / deactivate them in turn for a fixed time; the CPU each process used is read from
/proc before and after.

    python -m benchmarks.throughput [--hosts 4] [--vms 16] [--nics 4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from benchmarks.table import Figure, at_least, at_most, percentile
from devtools import guest, netdev
from devtools.agent_proc import AgentClient, run_agent
from devtools.engine_proc import EngineClient, run_engine
from devtools.pg import Cluster
from engine.api.paths import API

TICKS = os.sysconf("SC_CLK_TCK")
PHASES: list[str] = []
ENGINE_SETTINGS: dict[str, str] = {}  # benchmarks may set monitor_interval etc.
BRIDGE = "hpb-tput"  # the simulated hypervisor checks that the bridge exists, as libvirt does
OPS_TARGET, P99_TARGET_MS = 1000.0, 30.0  # issue 14: ops/s with 64 clients, p99 with 16


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def postgres_pids(pg: Cluster) -> list[int]:
    """The postmaster of the cluster and every backend it forked."""
    postmaster = int((pg.datadir / "postmaster.pid").read_text().split()[0])
    found = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return found


async def setup(api: EngineClient, agents: list[AgentClient], vms_per_host: int, nics_per_vm: int) -> list[str]:
    """Hosts, VMs started on them, NICs unplugged; the paths of every NIC."""
    cluster = await api.ok("POST", "/clusters", {"name": "t", "version": {"major": 4, "minor": 7}})
    await api.ok("POST", "/networks", {"name": "tput", "bridge": BRIDGE, "cluster": {"id": cluster["id"]}})
    profile = (await api.ok("GET", "/vnicprofiles"))["vnic_profile"][0]
    nic_paths = []
    for h, agent in enumerate(agents):
        port = int(agent.url.split(":")[2].split("/")[0])
        host = await api.ok("POST", "/hosts", {"name": f"sim{h}", "address": "127.0.0.1", "port": port,
                                               "cluster": {"id": cluster["id"]}})  # fmt: skip
        for v in range(vms_per_host):
            vm = await api.ok("POST", "/vms", guest.engine_vm(f"t{h}-{v}", cluster["id"]))
            for n in range(nics_per_vm):
                body = {"name": f"n{n}", "plugged": False, "vnic_profile": {"id": profile["id"]}}
                nic = await api.ok("POST", f"/vms/{vm['id']}/nics", body)
                nic_paths.append(f"/vms/{vm['id']}/nics/{nic['id']}")
            await api.ok("POST", f"/vms/{vm['id']}/start", {"vm": {"placement_policy": {"hosts": {"host": [
                {"id": host["id"]}]}}}})  # fmt: skip
    return nic_paths


async def load(api: EngineClient, nic_paths: list[str], clients: int, seconds: float) -> tuple[int, list[float]]:
    """``clients`` clients, each toggling its own NICs; (operations done, latencies)."""
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "application/json"}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client(owned: list[str], session: aiohttp.ClientSession) -> None:
        plugged = dict.fromkeys(owned, False)
        i = 0
        while time.monotonic() < deadline:
            path = owned[i % len(owned)]
            i += 1
            action = "deactivate" if plugged[path] else "activate"
            started = time.perf_counter()
            async with session.post(api.base + API + f"{path}/{action}", json={}, headers=headers) as resp:
                await resp.read()
                PHASES.append(resp.headers.get("Server-Timing", ""))
                assert resp.status == 200, f"{action}: {resp.status} {await resp.text()}"
            latencies.append(time.perf_counter() - started)
            plugged[path] = not plugged[path]

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Each client owns whole VMs (their NICs), so clients do not queue on one another's VM
        # locks: changes to one VM are serialised by design, across all engines.
        vms = sorted({path.split("/nics/")[0] for path in nic_paths})
        owned = [[p for vm in vms[c::clients] for p in nic_paths if p.startswith(vm + "/")] for c in range(clients)]
        await asyncio.gather(*(client(paths, session) for paths in owned if paths))
    return len(latencies), latencies


async def run(hosts: int = 4, vms: int = 16, nics: int = 4, seconds: float = 10.0) -> list[Figure]:
    root = Path(tempfile.mkdtemp(prefix="hotplug-tput-"))
    os.chmod(root, 0o755)
    pg = Cluster(root / "data")
    pg.init(durable=False)
    pg.start()
    netdev.ensure_bridge(BRIDGE)
    figures = []
    try:
        async with AsyncExitStack() as stack:
            agents = [await stack.enter_async_context(run_agent(root, hypervisor="simulated", log_level="WARNING"))
                      for _ in range(hosts)]  # fmt: skip
            api = await stack.enter_async_context(
                run_engine(root, pg.create_database("tput"), "tput", log_level="WARNING", **ENGINE_SETTINGS)
            )
            nic_paths = await setup(api, agents, vms, nics)
            where = f"{hosts} hosts x {vms} VMs x {nics} NICs, simulated hypervisor"
            # Found again at the end: PostgreSQL forks a backend for each connection the engine's
            # pools open during the run, and those count too (from zero: they began meanwhile).
            finders = {"engine": lambda: [api.pid], "agents": lambda: [a.process.pid for a in agents],
                       "postgres": lambda: postgres_pids(pg)}  # fmt: skip
            for clients in (16, 64):
                before = {name: {pid: cpu_seconds(pid) for pid in find()} for name, find in finders.items()}
                own_before, started = time.process_time(), time.monotonic()
                done, latencies = await load(api, nic_paths, clients, seconds)
                wall = time.monotonic() - started
                processes = {name: find() for name, find in finders.items()}
                used = {name: sum(cpu_seconds(pid) - before[name].get(pid, 0.0) for pid in pids)
                        for name, pids in processes.items()}  # fmt: skip
                used["load generator"] = time.process_time() - own_before
                rate = done / wall
                p99 = percentile([x * 1000 for x in latencies], 99)
                busiest = max(used, key=lambda name: used[name] / (len(processes.get(name, [0])) or 1))
                per_op = ", ".join(f"{name} {seconds_used / done * 1000:.2f}" for name, seconds_used in used.items())
                load_text = ", ".join(f"{name} {seconds_used / wall:.0%}" for name, seconds_used in used.items())
                if clients == 64:
                    figures.append(at_least(f"throughput, {clients} clients ({where})", rate, OPS_TARGET, "ops/s"))
                else:
                    figures.append(Figure(f"throughput, {clients} clients", f"{rate:.0f} ops/s"))
                if clients == 16:
                    figures.append(at_most(f"p99 latency, {clients} clients", p99, P99_TARGET_MS, "ms"))
                else:
                    figures.append(Figure(f"p99 latency, {clients} clients", f"{p99:.1f} ms"))
                figures.append(Figure(f"CPU per operation, {clients} clients (ms)", per_op))
                figures.append(Figure(f"CPU load, {clients} clients (one core = 100%)",
                                      f"{load_text}; busiest: {busiest}"))  # fmt: skip
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        netdev.delete(BRIDGE)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--vms", type=int, default=16)
    parser.add_argument("--nics", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    from benchmarks.table import render

    print(render(asyncio.run(run(args.hosts, args.vms, args.nics, args.seconds))))
