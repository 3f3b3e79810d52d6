"""Median hotplugNic / hotunplugNic time through the agent, next to the raw libvirt calls.

Real libvirtd, the tiny guest, one model at a time.  Every cycle waits until the guest has set
the new card up before unplugging it (an unplug right after a plug is slower: the guest is
still busy), and the same procedure is timed for both paths.

    python -m benchmarks.agent_latency [--cycles N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import libvirt
import libvirtaio

from devtools import guest, netdev
from devtools.agent_proc import run_agent

BRIDGE = "hpb-br0"
NAME = "hotplug-bench-guest"


def _iface(mac: str, model: str, alias: str) -> str:
    return (
        f"<interface type='bridge'><source bridge='{BRIDGE}'/><model type='{model}'/>"
        f"<mac address='{mac}'/><alias name='{alias}'/></interface>"
    )


Plug = Callable[[str, str], Awaitable[None]]
Unplug = Callable[[str], Awaitable[None]]


async def _cycle(i: int, plug: Plug, unplug: Unplug, console: Path, model: str) -> tuple[float, float]:
    mac, alias = f"52:54:00:b0:{i // 256:02x}:{i % 256:02x}", f"ua-bench-{i}"
    start = time.perf_counter()
    await plug(mac, alias)
    plugged = time.perf_counter() - start
    if model == "virtio":  # wait for the guest driver to settle on the card
        await asyncio.to_thread(guest.wait_for_console, console, mac, 30.0)
    else:
        await asyncio.sleep(0.5)
    start = time.perf_counter()
    await unplug(alias)
    return plugged, time.perf_counter() - start


async def _compare(
    n: int, paths: dict[str, tuple[Plug, Unplug]], console: Path, model: str
) -> dict[str, tuple[list[float], list[float]]]:
    """Alternate the paths cycle by cycle, so that a guest slowing down over time hits both alike."""
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in paths}
    counter = 0
    for i in range(n):
        order = list(paths) if i % 2 == 0 else list(reversed(paths))
        for name in order:
            plugged, unplugged = await _cycle(counter, *paths[name], console, model)
            counter += 1
            samples[name][0].append(plugged)
            samples[name][1].append(unplugged)
    return samples


def _row(label: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"  {label:<28} median {statistics.median(ms):7.1f} ms   min {ms[0]:7.1f}   max {ms[-1]:7.1f}"


async def main(cycles: int) -> None:
    libvirtaio.virEventRegisterAsyncIOImpl()
    netdev.ensure_bridge(BRIDGE)
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open("qemu:///system")
    with contextlib.suppress(libvirt.libvirtError):
        conn.lookupByName(NAME).destroy()
    guest.ensure_built()
    spec = guest.spec(NAME)
    console = guest.console_of(spec.vm_id)
    console.unlink(missing_ok=True)
    conn.createXML(guest.domain_xml(spec), 0)
    await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)
    await asyncio.sleep(3)  # let the fresh guest go idle
    removed: dict[str, asyncio.Future[None]] = {}

    def on_removed(_c: object, _d: object, alias: str, _o: object) -> None:
        if alias in removed and not removed[alias].done():
            removed[alias].set_result(None)

    cb = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, on_removed, None)
    dom = conn.lookupByUUIDString(spec.vm_id)
    try:
        async with run_agent(Path(tempfile.mkdtemp(prefix="hotplug-bench-"))) as agent:
            for model in ("virtio", "e1000"):

                async def raw_plug(mac: str, alias: str, model: str = model) -> None:
                    await asyncio.to_thread(
                        dom.attachDeviceFlags, _iface(mac, model, alias), libvirt.VIR_DOMAIN_AFFECT_LIVE
                    )

                async def raw_unplug(alias: str) -> None:
                    done = removed[alias] = asyncio.get_running_loop().create_future()
                    await asyncio.to_thread(dom.detachDeviceAlias, alias, libvirt.VIR_DOMAIN_AFFECT_LIVE)
                    await asyncio.wait_for(done, 30)
                    del removed[alias]

                async def agent_plug(mac: str, alias: str, model: str = model) -> None:
                    nic = {"type": "interface", "device": "bridge", "network": BRIDGE, "macAddr": mac,
                           "nicModel": model, "alias": alias}  # fmt: skip
                    await agent.ok("VM.hotplugNic", vmId=spec.vm_id, nic=nic)

                async def agent_unplug(alias: str) -> None:
                    await agent.ok("VM.hotunplugNic", vmId=spec.vm_id, nic={"alias": alias})

                both = await _compare(
                    cycles, {"raw": (raw_plug, raw_unplug), "agent": (agent_plug, agent_unplug)}, console, model
                )
                raw, via_agent = both["raw"], both["agent"]
                print(f"{model}, {cycles} cycles each:")
                print(_row("libvirt attach (raw)", raw[0]))
                print(_row("VM.hotplugNic (agent)", via_agent[0]))
                print(_row("libvirt detach+REMOVED (raw)", raw[1]))
                print(_row("VM.hotunplugNic (agent)", via_agent[1]))
    finally:
        conn.domainEventDeregisterAny(cb)
        dom.destroy()
        conn.close()
        await asyncio.sleep(0.1)  # let libvirtaio release the connection inside the loop
        netdev.delete(BRIDGE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=10)
    asyncio.run(main(parser.parse_args().cycles))
