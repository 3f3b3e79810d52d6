"""Hot plug latency side by side, in one run, on one guest: raw libvirt, the agent, the engine.

Real PostgreSQL (a throwaway cluster), a real agent on libvirtd, the tiny guest started by the
engine.  Every cycle runs the three paths in turn (the order rotates, so a guest slowing down
over time hits all alike), each on its own NIC of the same model:

    plug:    raw attachDeviceFlags   VM.hotplugNic (JSON-RPC)   POST …/activate (REST)
    unplug:  raw detach + DEVICE_REMOVED   VM.hotunplugNic   POST …/deactivate

and waits, after each plug, until the guest has set the card up (an unplug right after a plug
is slower: the guest is still busy).

    python -m benchmarks.latency [--cycles N] [--model virtio]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import libvirt
import libvirtaio

from benchmarks.table import Figure, ratio_figure, summary
from devtools import guest, netdev
from devtools.agent_proc import run_agent
from devtools.engine_proc import run_engine
from devtools.pg import Cluster
from engine.api.paths import API

BRIDGE = "hpb-br2"
PLUG_TARGET, UNPLUG_TARGET = 1.15, 1.05  # issue 14: the engine's path against raw libvirt


def _iface(mac: str, model: str, alias: str) -> str:
    return (
        f"<interface type='bridge'><source bridge='{BRIDGE}'/><model type='{model}'/>"
        f"<mac address='{mac}'/><alias name='{alias}'/></interface>"
    )


Step = Callable[[], Awaitable[None]]


def _server_timing(header: str) -> dict[str, float]:
    found = {}
    for part in filter(None, (p.strip() for p in header.split(","))):
        name, _, duration = part.partition(";dur=")
        found[name] = float(duration)
    return found


def where_the_time_goes(action: str, samples: list[dict[str, float]]) -> Figure:
    """Medians of the engine's Server-Timing phases: HTTP and framework (the client's time
    outside the handler), database, journal, host call (the agent's whole answer), the rest."""

    def median(key: str) -> float:
        return statistics.median(s.get(key, 0.0) for s in samples)

    own = statistics.median(s["app"] - s.get("db", 0) - s.get("journal", 0) - s.get("host", 0) for s in samples)
    parts = {
        "http": statistics.median(s["client"] - s["app"] for s in samples),
        "db": median("db"),
        "journal": median("journal"),
        "host": median("host"),
        "engine python": own,
    }
    shown = ", ".join(f"{name} {ms:.1f}" for name, ms in parts.items())
    return Figure(f"{action}: where the time goes (median ms)", shown)


async def run(cycles: int = 20, model: str = "virtio") -> list[Figure]:
    libvirtaio.virEventRegisterAsyncIOImpl()
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    root = Path(tempfile.mkdtemp(prefix="hotplug-bench-"))
    os.chmod(root, 0o755)
    pg = Cluster(root / "data")
    pg.init(durable=False)
    pg.start()
    netdev.ensure_bridge(BRIDGE)
    guest.ensure_built()
    conn = libvirt.open("qemu:///system")
    removed: dict[str, asyncio.Future[None]] = {}

    def on_removed(_c: object, _d: object, alias: str, _o: object) -> None:
        if alias in removed and not removed[alias].done():
            removed[alias].set_result(None)

    callback = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, on_removed, None)
    try:
        async with run_agent(root) as agent, run_engine(root, pg.create_database("bench"), "bench") as api:
            cluster = await api.ok("POST", "/clusters", {"name": "b", "version": {"major": 4, "minor": 7}})
            port = int(agent.url.split(":")[2].split("/")[0])
            await api.ok("POST", "/hosts", {"name": "h", "address": "127.0.0.1", "port": port,
                                            "cluster": {"id": cluster["id"]}})  # fmt: skip
            await api.ok("POST", "/networks", {"name": "n", "bridge": BRIDGE, "cluster": {"id": cluster["id"]}})
            profile = (await api.ok("GET", "/vnicprofiles"))["vnic_profile"][0]
            vm = await api.ok("POST", "/vms", guest.engine_vm("bench", cluster["id"]))
            console = guest.console_of(vm["id"])
            console.unlink(missing_ok=True)
            nic = await api.ok("POST", f"/vms/{vm['id']}/nics", {"name": "n1", "vnic_profile": {"id": profile["id"]},
                                                                 "interface": model, "plugged": False})  # fmt: skip
            await api.ok("POST", f"/vms/{vm['id']}/start")
            await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)
            await asyncio.sleep(3)  # let the fresh guest go idle
            dom = conn.lookupByUUIDString(vm["id"])
            headers = {"Authorization": f"Bearer {api.token}", "Accept": "application/json"}
            phases: dict[str, list[dict[str, float]]] = {"activate": [], "deactivate": []}
            base = f"/vms/{vm['id']}/nics/{nic['id']}"
            counter = iter(range(10**6))

            def fresh() -> tuple[str, str]:
                i = next(counter)
                return f"52:54:00:b2:{i // 256:02x}:{i % 256:02x}", f"ua-bench-{i}"

            async def raw() -> tuple[Step, Step, str]:
                mac, alias = fresh()

                async def plug() -> None:
                    await asyncio.to_thread(dom.attachDeviceFlags, _iface(mac, model, alias),
                                            libvirt.VIR_DOMAIN_AFFECT_LIVE)  # fmt: skip

                async def unplug() -> None:
                    done = removed[alias] = asyncio.get_running_loop().create_future()
                    await asyncio.to_thread(dom.detachDeviceAlias, alias, libvirt.VIR_DOMAIN_AFFECT_LIVE)
                    await asyncio.wait_for(done, 30)
                    del removed[alias]

                return plug, unplug, mac

            async def via_agent() -> tuple[Step, Step, str]:
                mac, alias = fresh()
                params = {"type": "interface", "device": "bridge", "network": BRIDGE, "macAddr": mac,
                          "nicModel": model, "alias": alias}  # fmt: skip

                async def plug() -> None:
                    await agent.ok("VM.hotplugNic", vmId=vm["id"], nic=params)

                async def unplug() -> None:
                    await agent.ok("VM.hotunplugNic", vmId=vm["id"], nic={"alias": alias})

                return plug, unplug, mac

            async def via_engine() -> tuple[Step, Step, str]:
                async def call(action: str) -> None:
                    started = time.perf_counter()
                    async with api.session.post(api.base + API + f"{base}/{action}", json={}, headers=headers) as resp:
                        assert resp.status == 200, await resp.text()
                        await resp.read()
                        timing = _server_timing(resp.headers.get("Server-Timing", ""))
                    timing["client"] = (time.perf_counter() - started) * 1000
                    phases[action].append(timing)

                async def plug() -> None:
                    await call("activate")

                async def unplug() -> None:
                    await call("deactivate")

                return plug, unplug, nic["mac"]["address"]

            paths = {"raw": raw, "agent": via_agent, "engine": via_engine}
            plugs: dict[str, list[float]] = {name: [] for name in paths}
            unplugs: dict[str, list[float]] = {name: [] for name in paths}
            for i in range(cycles):
                order = list(paths)[i % 3 :] + list(paths)[: i % 3]
                for name in order:
                    plug, unplug, mac = await paths[name]()
                    seen_from = console.stat().st_size
                    start = time.perf_counter()
                    await plug()
                    plugs[name].append(time.perf_counter() - start)
                    await asyncio.to_thread(guest.wait_for_console, console, mac, 30.0, seen_from)
                    start = time.perf_counter()
                    await unplug()
                    unplugs[name].append(time.perf_counter() - start)
            await api.ok("POST", f"/vms/{vm['id']}/stop")
    finally:
        conn.domainEventDeregisterAny(callback)
        conn.close()
        await asyncio.sleep(0.1)  # let libvirtaio release the connection inside the loop
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        netdev.delete(BRIDGE)
    where = f"{model}, {cycles} cycles"
    return [
        *(where_the_time_goes(action, phases[action]) for action in ("activate", "deactivate")),
        summary(f"raw attachDeviceFlags ({where})", plugs["raw"]),
        summary("VM.hotplugNic (agent, JSON-RPC over mTLS)", plugs["agent"]),
        summary("activate (engine REST API)", plugs["engine"]),
        ratio_figure("activate / raw attach (medians)", plugs["engine"], plugs["raw"], PLUG_TARGET),
        summary("raw detach until DEVICE_REMOVED", unplugs["raw"]),
        summary("VM.hotunplugNic (agent)", unplugs["agent"]),
        summary("deactivate (engine REST API)", unplugs["engine"]),
        ratio_figure("deactivate / raw detach (medians)", unplugs["engine"], unplugs["raw"], UNPLUG_TARGET),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--model", default="virtio")
    args = parser.parse_args()
    from benchmarks.table import render

    print(render(asyncio.run(run(args.cycles, args.model))))
