"""Median activate / deactivate time through the engine's REST API, next to the agent call alone.

Real PostgreSQL (a throwaway cluster), a real agent on libvirtd, the tiny guest run by the
engine.  Cycles alternate between the two paths on the same VM, each unplug after the guest
has set the card up.

    python -m benchmarks.engine_latency [--cycles N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from devtools import guest, netdev
from devtools.agent_proc import run_agent
from devtools.engine_proc import run_engine
from devtools.pg import Cluster

BRIDGE = "hpb-br1"


def _row(label: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"  {label:<34} median {statistics.median(ms):7.1f} ms   min {ms[0]:7.1f}   max {ms[-1]:7.1f}"


async def main(cycles: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="hotplug-bench-pg-"))
    os.chmod(root, 0o755)
    pg = Cluster(root / "data")
    pg.init(durable=False)
    pg.start()
    netdev.ensure_bridge(BRIDGE)
    guest.ensure_built()
    try:
        async with run_agent(root) as agent, run_engine(root, pg.create_database("bench"), "bench") as api:
            cluster = await api.ok("POST", "/clusters", {"name": "b", "version": {"major": 4, "minor": 7}})
            port = int(agent.url.split(":")[2].split("/")[0])
            await api.ok("POST", "/hosts", {"name": "h", "address": "127.0.0.1", "port": port,
                                            "cluster": {"id": cluster["id"]}})  # fmt: skip
            network = await api.ok(
                "POST", "/networks", {"name": "n", "bridge": BRIDGE, "cluster": {"id": cluster["id"]}}
            )
            profile = (await api.ok("GET", "/vnicprofiles"))["vnic_profile"][0]
            assert profile["network"]["id"] == network["id"]
            vm = await api.ok("POST", "/vms", guest.engine_vm("bench", cluster["id"]))
            console = guest.console_of(vm["id"])
            nic = await api.ok("POST", f"/vms/{vm['id']}/nics", {"name": "n1", "vnic_profile": {"id": profile["id"]},
                                                                 "plugged": False})  # fmt: skip
            await api.ok("POST", f"/vms/{vm['id']}/start")
            await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)
            await asyncio.sleep(3)
            base = f"/vms/{vm['id']}/nics/{nic['id']}"
            samples: dict[str, list[float]] = {k: [] for k in ("api+", "api-", "agent+", "agent-")}
            for i in range(cycles):
                seen_from = console.stat().st_size  # the same MAC comes back every cycle
                start = time.perf_counter()
                await api.ok("POST", f"{base}/activate")
                samples["api+"].append(time.perf_counter() - start)
                await asyncio.to_thread(guest.wait_for_console, console, nic["mac"]["address"], 30.0, seen_from)
                start = time.perf_counter()
                await api.ok("POST", f"{base}/deactivate")
                samples["api-"].append(time.perf_counter() - start)

                mac = f"52:54:00:b1:00:{i:02x}"
                params = {"type": "interface", "device": "bridge", "network": BRIDGE, "macAddr": mac,
                          "nicModel": "pv", "alias": f"ua-bench{i}"}  # fmt: skip
                start = time.perf_counter()
                await agent.ok("VM.hotplugNic", vmId=vm["id"], nic=params)
                samples["agent+"].append(time.perf_counter() - start)
                await asyncio.to_thread(guest.wait_for_console, console, mac, 30.0)
                start = time.perf_counter()
                await agent.ok("VM.hotunplugNic", vmId=vm["id"], nic={"alias": f"ua-bench{i}"})
                samples["agent-"].append(time.perf_counter() - start)
            await api.ok("POST", f"/vms/{vm['id']}/stop")
            print(f"virtio, {cycles} cycles each, on one running tiny guest:")
            print(_row("activate (engine REST API)", samples["api+"]))
            print(_row("VM.hotplugNic (agent alone)", samples["agent+"]))
            print(_row("deactivate (engine REST API)", samples["api-"]))
            print(_row("VM.hotunplugNic (agent alone)", samples["agent-"]))
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        netdev.delete(BRIDGE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=10)
    asyncio.run(main(parser.parse_args().cycles))
