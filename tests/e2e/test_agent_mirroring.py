"""promisc (port mirroring): a NIC sees all traffic of the named bridges, and only then."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from devtools import netdev
from devtools.agent_proc import AgentClient
from tests.e2e.conftest import Guest
from tests.e2e.netns import Capture, NsHost, add_host, remove_host
from vdsm_agent.live_xml import parse_nics

BRIDGE = "hpt-mir0"


@pytest.fixture
def mirrored_bridge() -> Iterator[tuple[str, NsHost, NsHost]]:
    netdev.delete(BRIDGE)
    netdev.ensure_bridge(BRIDGE)
    a = add_host(BRIDGE, "hpt-nsa", "02:00:00:00:0a:01")
    b = add_host(BRIDGE, "hpt-nsb", "02:00:00:00:0b:01")
    yield BRIDGE, a, b
    remove_host("hpt-nsa")
    remove_host("hpt-nsb")
    netdev.delete(BRIDGE)


def _nic(mac: str, alias_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "interface", "device": "bridge", "network": BRIDGE, "macAddr": mac, "nicModel": "e1000",
            "id": alias_id, **extra}  # fmt: skip


async def _mirred_filters(dev: str) -> str:
    shown = await asyncio.to_thread(
        subprocess.run, ["tc", "filter", "show", "dev", dev, "ingress"], capture_output=True, text=True
    )
    return shown.stdout


async def test_promisc_nic_sees_traffic_between_other_ports_and_a_plain_nic_does_not(
    agent: AgentClient, clean_guest: Guest, mirrored_bridge: tuple[str, NsHost, NsHost]
) -> None:
    bridge, a, b = mirrored_bridge
    vm = clean_guest.uuid
    mirror = (await agent.ok("VM.hotplugNic", vmId=vm, nic=_nic("52:54:00:a7:00:01", "mirror", promisc=bridge)))["nic"]
    plain = (await agent.ok("VM.hotplugNic", vmId=vm, nic=_nic("52:54:00:a7:00:02", "plain")))["nic"]
    filters = await _mirred_filters(f"{a.netns}-br")
    assert "mirred" in filters and mirror["name"] in filters

    # b speaks first so the bridge learns where b is: a's unicast frames to b are then
    # forwarded to b's port only, never flooded to the VM's ports.
    await asyncio.to_thread(b.send, a.mac, "HELLO-FROM-B", 3)
    captures = {"mirror": Capture(mirror["name"]), "plain": Capture(plain["name"])}
    try:
        await asyncio.to_thread(a.send, b.mac, "A-TO-B", 5)
        seen = {k: await asyncio.to_thread(c.markers, "A-TO-B") for k, c in captures.items()}
    finally:
        for c in captures.values():
            c.close()
    assert seen["mirror"] == {f"A-TO-B-{i}" for i in range(5)}
    assert seen["plain"] == set()

    await agent.ok("VM.hotunplugNic", vmId=vm, nic={"alias": mirror["alias"]})
    for port in (f"{a.netns}-br", f"{b.netns}-br", plain["name"]):  # mirroring removed with the NIC
        assert "mirred" not in await _mirred_filters(port), port


async def test_a_failed_mirroring_unplugs_the_nic_again(
    agent: AgentClient, clean_guest: Guest, mirrored_bridge: tuple[str, NsHost, NsHost]
) -> None:
    mac = "52:54:00:a7:00:03"
    refused = await agent.error("VM.hotplugNic", vmId=clean_guest.uuid, nic=_nic(mac, "m2", promisc=["hpt-nosuch1"]))
    assert refused.code == 49
    assert "port mirroring failed" in refused.message and "hpt-nosuch1" in refused.message
    assert mac not in {n.mac for n in parse_nics(clean_guest.domain.XMLDesc(0))}
