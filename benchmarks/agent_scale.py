"""Agent throughput at scale, on the SIMULATED hypervisor (devices in memory, no QEMU).

This measures the agent's own cost — JSON-RPC, validation, XML building and parsing, per-VM
serialisation — with many VMs and NICs, which real TCG guests on a 2-core machine cannot
reach.  It proves nothing about libvirt; the e2e tests do that.

    python -m benchmarks.agent_scale [--vms 50] [--nics 20] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.table import Figure, at_most, summary
from devtools.agent_proc import AgentClient, run_agent


async def _timed_all(calls: list[Callable[[], Awaitable[Any]]], concurrency: int) -> tuple[float, list[float]]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    return time.perf_counter() - start, latencies


def _report(label: str, wall: float, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"  {label:<16} {len(ms):6d} calls  {len(ms) / wall:8.0f} calls/s  "
        f"median {statistics.median(ms):6.1f} ms  p99 {p99:6.1f} ms"
    )


def _peak_rss_mib(agent: AgentClient) -> float:
    for line in Path(f"/proc/{agent.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(vms: int, nics: int, concurrency: int) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="hotplug-scale-"))
    async with run_agent(log_dir, hypervisor="simulated", log_level="WARNING") as agent:
        vm_ids = [str(uuid.uuid4()) for _ in range(vms)]
        for i, vm_id in enumerate(vm_ids):
            await agent.ok("VM.create", vmId=vm_id, vmName=f"scale-{i}", memSize=128)

        def plug(vm_id: str, v: int, n: int) -> Callable[[], Awaitable[Any]]:
            mac = f"52:54:01:{v // 256:02x}:{v % 256:02x}:{n:02x}"
            nic = {"type": "interface", "device": "bridgeless", "macAddr": mac, "nicModel": "pv", "id": f"n{n}"}
            return lambda: agent.ok("VM.hotplugNic", vmId=vm_id, nic=nic)

        def unplug(vm_id: str, n: int) -> Callable[[], Awaitable[Any]]:
            return lambda: agent.ok("VM.hotunplugNic", vmId=vm_id, nic={"alias": f"ua-n{n}"})

        # Interleave VMs so that concurrent calls hit many VMs and a few share one.
        plugs = [plug(vm_ids[v], v, n) for n in range(nics) for v in range(vms)]
        unplugs = [unplug(vm_ids[v], n) for n in range(nics) for v in range(vms)]
        print(f"simulated hypervisor: {vms} VMs x {nics} NICs, {concurrency} calls in flight")
        _report("VM.hotplugNic", *await _timed_all(plugs, concurrency))
        full = await agent.ok("Host.getVMFullList")
        assert sum(len(vm["nics"]) for vm in full) == vms * nics
        # Monitoring's poll: every VM's status and device hash, one call after another.
        polls = [lambda: agent.ok("Host.getAllVmStats") for _ in range(20)]
        _report("getAllVmStats", *await _timed_all(polls, 1))
        _report("getVMFullList", *await _timed_all([lambda: agent.ok("Host.getVMFullList")] * 5, 1))
        _report("VM.hotunplugNic", *await _timed_all(unplugs, concurrency))
        full = await agent.ok("Host.getVMFullList")
        assert sum(len(vm["nics"]) for vm in full) == 0
        print(f"  agent peak RSS   {_peak_rss_mib(agent):.0f} MiB")


AGENT_RSS_TARGET_MIB = 60.0  # issue 14: one agent with 500 VMs


async def run(vms: int = 500, nics: int = 4) -> list[Figure]:
    """The agent's memory with ``vms`` VMs of ``nics`` plugged NICs each, on the simulated hypervisor."""
    log_dir = Path(tempfile.mkdtemp(prefix="hotplug-scale-"))
    async with run_agent(log_dir, hypervisor="simulated", log_level="WARNING") as agent:
        vm_ids = [str(uuid.uuid4()) for _ in range(vms)]
        for i, vm_id in enumerate(vm_ids):
            await agent.ok("VM.create", vmId=vm_id, vmName=f"scale-{i}", memSize=128)
        plugs = [
            (lambda vm_id=vm_id, v=v, n=n: agent.ok("VM.hotplugNic", vmId=vm_id, nic={
                "type": "interface", "device": "bridgeless",
                "macAddr": f"52:54:01:{v // 256:02x}:{v % 256:02x}:{n:02x}",
                "nicModel": "pv", "id": f"n{n}"}))
            for n in range(nics) for v, vm_id in enumerate(vm_ids)
        ]  # fmt: skip
        wall, latencies = await _timed_all(plugs, 32)
        polls = [lambda: agent.ok("Host.getAllVmStats") for _ in range(20)]
        _, poll_latencies = await _timed_all(polls, 1)
        rss = _rss_mib(agent)
    where = f"{vms} VMs x {nics} NICs, simulated hypervisor"
    return [
        at_most(f"agent RSS ({where})", rss, AGENT_RSS_TARGET_MIB, "MiB"),
        Figure("agent alone: VM.hotplugNic, 32 in flight", f"{len(latencies) / wall:.0f} plugs/s"),
        summary(f"agent: Host.getAllVmStats of {vms} VMs", poll_latencies),
    ]


def _rss_mib(agent: AgentClient) -> float:
    for line in Path(f"/proc/{agent.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=50)
    parser.add_argument("--nics", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.vms, args.nics, args.concurrency))
