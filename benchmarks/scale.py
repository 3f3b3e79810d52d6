"""One engine at scale: 1,000 hosts, 10,000 VMs, 40,000 NICs (then 100,000), monitoring on.

The hosts are simulated (``benchmarks/sim_hosts.py``: whole agent applications on the
simulated hypervisor, one process, mutual TLS).  Everything is loaded through the REST API, the
way a client would, with every rule checked: hosts, VMs, their NICs, then each VM started on its
host; the MAC pool is grown through ``PUT /macpools/{id}`` for the 100,000 NICs.  At 100, 10,000
and 100,000 NICs the benchmark times what a client and the admin page ask most: a page of the VM
list (``max=50``), a VM found by name (``search=name=…``), and one VM's NIC list — each with an
answer of the same size at every data size (the 50 probe VMs loaded first).  Once the load has
settled it reads the engine's CPU with monitoring alone and the monitoring cycle over all hosts,
the engine's memory, and the database's size.

    python -m benchmarks.scale [--hosts 1000] [--vms 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from benchmarks.table import Figure, at_most, percentile
from benchmarks.throughput import cpu_seconds
from devtools import guest, netdev
from devtools.engine_proc import EngineClient, run_engine
from devtools.pg import Cluster
from engine import heap
from engine.api.paths import API

BRIDGE = "hpb-scale"
RSS_TARGET_MIB, FLAT_WITHIN = 200.0, 1.2
CONCURRENCY = 32
# The first VMs, of two NICs each: the lists are timed on them at every size (see reads()).
PROBES = 50


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _all(calls: list[Callable[[], Awaitable[Any]]], concurrency: int = CONCURRENCY) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


class Loader:
    """Grows the data set through the API."""

    def __init__(self, api: EngineClient, first_port: int, hosts: int):
        self.api, self.first_port, self.host_count = api, first_port, hosts
        self.cluster_id = self.profile_id = ""
        self.hosts: list[str] = []
        self.vms: list[str] = []
        self.nics = 0

    async def setup(self) -> None:
        api = self.api
        cluster = await api.ok("POST", "/clusters", {"name": "scale", "version": {"major": 4, "minor": 7}})
        self.cluster_id = cluster["id"]
        await api.ok("POST", "/networks", {"name": "scale", "bridge": BRIDGE, "cluster": {"id": self.cluster_id}})
        self.profile_id = (await api.ok("GET", "/vnicprofiles"))["vnic_profile"][0]["id"]
        added = await _all([
            lambda i=i: api.ok("POST", "/hosts", {"name": f"sim{i:04d}", "address": "127.0.0.1",
                                                  "port": self.first_port + i, "cluster": {"id": self.cluster_id}})
            for i in range(self.host_count)
        ])  # fmt: skip
        self.hosts = [h["id"] for h in added]
        # The default pool holds 65,536 MACs; 100,000 NICs need more, added as an operator would.
        pool = (await api.ok("GET", "/macpools"))["mac_pool"][0]
        ranges = [*pool["ranges"]["range"], {"from": "56:6f:1b:00:00:00", "to": "56:6f:1b:ff:ff:ff"}]
        await api.ok("PUT", f"/macpools/{pool['id']}", {"ranges": {"range": ranges}})

    async def grow_vms(self, total: int, nics_each: int) -> None:
        """VMs up to ``total``, each with ``nics_each`` NICs, started on the hosts in turn."""
        api, first = self.api, len(self.vms)

        async def one(i: int) -> str:
            vm = await api.ok("POST", "/vms", {**guest.engine_vm(f"vm{i:06d}", self.cluster_id), "memory": 64 << 20})
            for n in range(nics_each):
                await api.ok(
                    "POST", f"/vms/{vm['id']}/nics", {"name": f"nic{n}", "vnic_profile": {"id": self.profile_id}}
                )
            placement = {"vm": {"placement_policy": {"hosts": {"host": [{"id": self.hosts[i % len(self.hosts)]}]}}}}
            await api.ok("POST", f"/vms/{vm['id']}/start", placement)
            return str(vm["id"])

        self.vms += await _all([lambda i=i: one(i) for i in range(first, total)])
        self.nics += (total - first) * nics_each

    async def grow_nics(self, total: int) -> None:
        """Unplugged NICs added in turn to the VMs past the probes until there are ``total``."""
        api, start, others = self.api, self.nics, self.vms[PROBES:]
        body = {"vnic_profile": {"id": self.profile_id}, "plugged": False}
        await _all([
            lambda i=i: api.ok("POST", f"/vms/{others[i % len(others)]}/nics", {**body, "name": f"extra{i}"})
            for i in range(start, total)
        ])  # fmt: skip
        self.nics = total


async def reads(api: EngineClient, database_url: str, vms: list[str]) -> dict[str, list[float]]:
    """What a client and the admin page ask most, timed (ms) once the engine has settled after
    loading (monitoring keeps running meanwhile, as it would).

    Each request gets an answer of the same size at every data size, so that what is compared
    is the cost of the data around it: a page of 50 VMs (the first 50 by name are the probes),
    one VM found by name, and the NIC list of a probe VM (two NICs at every size).  The three
    take turns, 100 rounds spread over about two monitoring cycles: monitoring polls its hosts
    in the first half of each cycle, and a list timed only then (or only after) would differ
    from the others by the phase it fell in, not by what it reads."""
    rng = random.Random(7)
    await settled(api, database_url)
    headers = {"Authorization": f"Bearer {api.token}", "Accept": "application/json"}
    paths = {
        "VM list page (max=50)": lambda: "/vms?max=50",
        "VM by name (search)": lambda: f"/vms?search=name%3Dvm{rng.randrange(len(vms)):06d}",
        "one VM's NIC list": lambda: f"/vms/{rng.choice(vms[:PROBES])}/nics",
    }
    samples: dict[str, list[float]] = {what: [] for what in paths}
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            for what, path in paths.items():
                started = time.perf_counter()
                async with session.get(api.base + API + path(), headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, f"GET {what}: {resp.status}"
                samples[what].append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.03)
    return samples


async def run(hosts: int = 1000, vms: int = 10000) -> list[Figure]:
    root = Path(tempfile.mkdtemp(prefix="hotplug-scale-"))
    os.chmod(root, 0o755)
    pg = Cluster(root / "data")
    pg.init(durable=False)
    pg.start()
    netdev.ensure_bridge(BRIDGE)
    first_port = 21000  # hosts on 21000 and up: below the kernel's ephemeral ports (32768+)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.sim_hosts", "--hosts", str(hosts), "--first-port", str(first_port),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    figures: list[Figure] = []
    try:
        assert sim.stdout is not None
        line = b""
        while not line.startswith(b"ready"):  # after what building the guest says, if it must
            line = await asyncio.wait_for(sim.stdout.readline(), 300)
            assert line, "the simulated hosts did not start"
        database_url = pg.create_database("scale")
        async with run_engine(root, database_url, "scale", log_level="WARNING") as api:
            loader = Loader(api, first_port, hosts)
            started = time.monotonic()
            await loader.setup()
            by_size: dict[int, dict[str, list[float]]] = {}
            await loader.grow_vms(PROBES, 2)  # 100 NICs
            by_size[loader.nics] = await reads(api, database_url, loader.vms)
            await loader.grow_vms(max(PROBES, vms // 4), 4)
            by_size[loader.nics] = await reads(api, database_url, loader.vms)
            await loader.grow_vms(vms, 4)
            loaded = time.monotonic() - started
            figures.append(Figure(f"load through the API: {hosts} hosts, {vms} VMs started, {loader.nics} NICs",
                                  f"{loaded:.0f} s"))  # fmt: skip
            loaded_at = time.monotonic()
            await settled(api, database_url)
            before, t0, (sum0, count0) = cpu_seconds(api.pid), time.monotonic(), await _cycles(api)
            await asyncio.sleep(20)
            idle_cpu = (cpu_seconds(api.pid) - before) / (time.monotonic() - t0)
            sum1, count1 = await _cycles(api)
            cycle = (sum1 - sum0) / max(1.0, count1 - count0)  # the cycles of these 20 s: monitoring alone
            # Memory as it stays once the load is over: after the engine's heap trim has run
            # (engine/heap.py), not the peak of the load.
            await asyncio.sleep(max(0.0, loaded_at + heap.TRIM_INTERVAL + 1 - time.monotonic()))
            engine_rss = rss_mib(api.pid)
            figures.append(at_most(f"engine RSS ({hosts} hosts, {vms} VMs, {loader.nics} NICs)", engine_rss,
                                   RSS_TARGET_MIB, "MiB"))  # fmt: skip
            figures.append(Figure(f"monitoring cycle over {hosts} hosts (interval 2 s)",
                                  f"{cycle:.2f} s; engine CPU with monitoring alone {idle_cpu:.0%} of a core",
                                  "fits 2 s with CPU to spare", cycle < 2.0 and idle_cpu < 0.5))  # fmt: skip
            page_cpu = await _page_cpu(api, "scale") - idle_cpu
            figures.append(Figure(f"one open admin page, {len(loader.vms)} VMs: the engine's extra CPU",
                                  f"{page_cpu:.1%} of a core (it polls every second: one page of 50 VMs)"))  # fmt: skip
            await loader.grow_nics(10 * len(loader.vms))
            by_size[loader.nics] = await reads(api, database_url, loader.vms)
            conn = await asyncpg.connect(database_url)
            try:
                size = await conn.fetchval("SELECT pg_database_size(current_database())")
            finally:
                await conn.close()
            figures.append(Figure(f"database size at {loader.nics} NICs", f"{size / 2**20:.0f} MiB"))
            sizes = sorted(by_size)
            for what in by_size[sizes[0]]:
                medians = [statistics.median(by_size[s][what]) for s in sizes]
                shown = "; ".join(f"{s:,} NICs: p50 {statistics.median(by_size[s][what]):.1f} ms, "
                                  f"p99 {percentile(by_size[s][what], 99):.1f} ms" for s in sizes)  # fmt: skip
                ratio = max(medians) / min(medians)
                figures.append(Figure(f"{what}, as the data grows", f"{shown} ({ratio:.2f}x)",
                                      f"flat within {FLAT_WITHIN}x", ratio <= FLAT_WITHIN))  # fmt: skip
    finally:
        if sim.returncode is None:
            sim.terminate()
            await sim.wait()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        netdev.delete(BRIDGE)
    return figures


async def _page_cpu(api: EngineClient, password: str, seconds: float = 20.0) -> float:
    """The engine's CPU (share of a core) while one admin page is open in Chromium and polls."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = await browser.new_page(base_url=api.base)
        await page.goto("/")
        await page.get_by_label("User name").fill("admin@internal")
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_selector("#vms tbody tr")
        before, started = cpu_seconds(api.pid), time.monotonic()
        await asyncio.sleep(seconds)
        used = (cpu_seconds(api.pid) - before) / (time.monotonic() - started)
        await browser.close()
    return used


async def _cycles(api: EngineClient) -> tuple[float, float]:
    """Monitoring cycles so far, from the engine's own /metrics: (seconds in all, how many)."""
    async with api.session.get(api.base + "/metrics", headers={"Authorization": f"Bearer {api.token}"}) as resp:
        text = await resp.text()
    values = {}
    for line in text.splitlines():
        if line.startswith(("engine_monitor_cycle_seconds_sum", "engine_monitor_cycle_seconds_count")):
            name, value = line.split()
            values[name] = float(value)
    return values["engine_monitor_cycle_seconds_sum"], values["engine_monitor_cycle_seconds_count"]


async def settled(api: EngineClient, database_url: str, cycles: int = 3, seconds: float = 2.0) -> None:
    """Wait until monitoring has gone round every host ``cycles`` times since now (it has seen
    what was loaded, and the first polls' TLS handshakes are behind) and the database is vacuumed
    and analysed after what the load added (tens of thousands of rows), then ``seconds`` more:
    what a client sees of a running system, not of the minutes after a bulk load."""
    _, start = await _cycles(api)
    while (await _cycles(api))[1] < start + cycles:
        await asyncio.sleep(0.5)
    conn = await asyncpg.connect(database_url)
    try:
        # PostgreSQL's advice after populating a database: VACUUM ANALYZE, rather than timing
        # reads while autovacuum (which looks once a minute) works through the new rows.
        started = time.monotonic()
        await conn.execute("VACUUM ANALYZE")
        print(f"bench: scale: VACUUM ANALYZE took {time.monotonic() - started:.1f} s", flush=True)
    finally:
        await conn.close()
    await asyncio.sleep(seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms", type=int, default=10000)
    args = parser.parse_args()
    from benchmarks.table import render

    print(render(asyncio.run(run(args.hosts, args.vms))))
