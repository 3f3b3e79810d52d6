"""promisc (port mirroring): a NIC sees all traffic of the named bridges, and only then; the
mirroring outlives an agent restart (it is recorded in the domain's metadata), covers ports
that join the bridge later, and leaves no qdisc behind once the last mirrored NIC is gone."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import netdev
from devtools.agent_proc import AgentClient, run_agent
from tests.e2e.conftest import Guest
from tests.e2e.netns import NsHost, add_host, remove_host, seen
from vdsm_agent.live_xml import parse_nics
from vdsm_agent.mirroring import parse_records

BRIDGE = "hpt-mir0"
SYNC = "0.5"  # mirror_sync_interval of the agents these tests start themselves


@pytest.fixture
def mirrored_bridge() -> Iterator[tuple[str, NsHost, NsHost]]:
    netdev.delete(BRIDGE)
    netdev.ensure_bridge(BRIDGE)
    a = add_host(BRIDGE, "hpt-nsa", "02:00:00:00:0a:01")
    b = add_host(BRIDGE, "hpt-nsb", "02:00:00:00:0b:01")
    yield BRIDGE, a, b
    remove_host("hpt-nsa")
    remove_host("hpt-nsb")
    remove_host("hpt-nsc")
    netdev.delete(BRIDGE)


def _nic(mac: str, alias_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "interface", "device": "bridge", "network": BRIDGE, "macAddr": mac, "nicModel": "e1000",
            "id": alias_id, **extra}  # fmt: skip


async def _mirred_filters(dev: str) -> str:
    shown = await asyncio.to_thread(
        subprocess.run, ["tc", "filter", "show", "dev", dev, "ingress"], capture_output=True, text=True
    )
    return shown.stdout


async def _ingress_qdisc(dev: str) -> str:
    shown = await asyncio.to_thread(
        subprocess.run, ["tc", "qdisc", "show", "dev", dev, "ingress"], capture_output=True, text=True, check=True
    )
    return shown.stdout.strip()


async def _mirrored_to(dev: str) -> list[str]:
    """The taps ``dev``'s ingress is mirrored to, one entry per filter."""
    return [line.split("Mirror to device ")[1].split(")")[0] for line in (await _mirred_filters(dev)).splitlines()
            if "Mirror to device" in line]  # fmt: skip


def _all(marker: str) -> set[str]:
    return {f"{marker}-{i}" for i in range(5)}


async def _eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_promisc_nic_sees_traffic_between_other_ports_and_a_plain_nic_does_not(
    agent: AgentClient, clean_guest: Guest, mirrored_bridge: tuple[str, NsHost, NsHost]
) -> None:
    bridge, a, b = mirrored_bridge
    vm = clean_guest.uuid
    mirror = (await agent.ok("VM.hotplugNic", vmId=vm, nic=_nic("52:54:00:a7:00:01", "mirror", promisc=bridge)))["nic"]
    plain = (await agent.ok("VM.hotplugNic", vmId=vm, nic=_nic("52:54:00:a7:00:02", "plain")))["nic"]
    filters = await _mirred_filters(f"{a.netns}-br")
    assert "mirred" in filters and mirror["name"] in filters

    mirrored, not_mirrored = await seen(a, b, "A-TO-B", mirror["name"], plain["name"])
    assert mirrored == _all("A-TO-B")
    assert not_mirrored == set()

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


async def test_mirroring_outlives_an_agent_restart(
    clean_guest: Guest, mirrored_bridge: tuple[str, NsHost, NsHost], output_dir: Path
) -> None:
    bridge, a, b = mirrored_bridge
    ports = (f"{a.netns}-br", f"{b.netns}-br")
    vm = clean_guest.uuid
    async with run_agent(output_dir / "e2e", mirror_sync_interval=SYNC) as first:
        nic = _nic("52:54:00:a7:00:11", "kept", promisc=bridge)
        tap = (await first.ok("VM.hotplugNic", vmId=vm, nic=nic))["nic"]["name"]
    (record,) = parse_records(clean_guest.domain.XMLDesc(0))  # what the agent left for its successor
    assert (record.alias, record.tap, record.bridges) == ("ua-kept", tap, (bridge,))

    # A restart with the filters in place adopts them: no second filter on any port.
    async with run_agent(output_dir / "e2e", mirror_sync_interval=SYNC):
        await asyncio.sleep(3 * float(SYNC))  # its periodic passes, the host-wide scan included
        for port in ports:
            assert await _mirrored_to(port) == [tap], port

    # While no agent runs, the host loses the tc state (a network restart): nothing mirrors.
    for port in ports:
        subprocess.run(["tc", "qdisc", "del", "dev", port, "ingress"], check=True)
    (lost,) = await seen(a, b, "LOST", tap)
    assert lost == set()

    async with run_agent(output_dir / "e2e", mirror_sync_interval=SYNC) as restarted:
        # Restored from the domain's metadata before the agent answers its first call.
        for port in ports:
            assert await _mirrored_to(port) == [tap], port
        (restored,) = await seen(a, b, "RESTORED", tap)
        assert restored == _all("RESTORED")
        # And the new agent knows what to take away.
        await restarted.ok("VM.hotunplugNic", vmId=vm, nic={"alias": "ua-kept"})
    for port in ports:
        assert await _mirrored_to(port) == [] and await _ingress_qdisc(port) == "", port
    assert parse_records(clean_guest.domain.XMLDesc(0)) == []


async def test_a_port_that_joins_the_bridge_later_is_mirrored(
    agent: AgentClient, clean_guest: Guest, mirrored_bridge: tuple[str, NsHost, NsHost]
) -> None:
    bridge, a, _ = mirrored_bridge
    vm = clean_guest.uuid
    mirror = (await agent.ok("VM.hotplugNic", vmId=vm, nic=_nic("52:54:00:a7:00:21", "mlate", promisc=bridge)))["nic"]
    plain = (await agent.ok("VM.hotplugNic", vmId=vm, nic=_nic("52:54:00:a7:00:22", "plate")))["nic"]
    c = await asyncio.to_thread(add_host, bridge, "hpt-nsc", "02:00:00:00:0c:01")  # after the plug

    async def c_is_mirrored() -> bool:
        return await _mirrored_to(f"{c.netns}-br") == [mirror["name"]]

    await _eventually(c_is_mirrored)  # the agent's periodic look at the bridge (every 2 s)
    seen_mirror, seen_plain = await seen(c, a, "C-TO-A", mirror["name"], plain["name"])
    assert seen_mirror == _all("C-TO-A")
    assert seen_plain == set()
    await agent.ok("VM.hotunplugNic", vmId=vm, nic={"alias": mirror["alias"]})
    assert await _mirrored_to(f"{c.netns}-br") == []


async def test_the_qdiscs_go_with_the_last_mirrored_nic(
    agent: AgentClient, clean_guest: Guest, mirrored_bridge: tuple[str, NsHost, NsHost]
) -> None:
    bridge, a, b = mirrored_bridge
    vm = clean_guest.uuid
    ports = (f"{a.netns}-br", f"{b.netns}-br")
    for port in ports:
        assert await _ingress_qdisc(port) == ""
    first = (await agent.ok("VM.hotplugNic", vmId=vm, nic=_nic("52:54:00:a7:00:31", "q1", promisc=bridge)))["nic"]
    second = (await agent.ok("VM.hotplugNic", vmId=vm, nic=_nic("52:54:00:a7:00:32", "q2", promisc=bridge)))["nic"]
    for port in ports:
        assert sorted(await _mirrored_to(port)) == sorted([first["name"], second["name"]]), port
        assert (await _ingress_qdisc(port)).startswith("qdisc ingress ffff:"), port

    await agent.ok("VM.hotunplugNic", vmId=vm, nic={"alias": first["alias"]})
    for port in ports:  # the other mirrored NIC still needs them
        assert await _mirrored_to(port) == [second["name"]], port
        assert (await _ingress_qdisc(port)).startswith("qdisc ingress ffff:"), port

    await agent.ok("VM.hotunplugNic", vmId=vm, nic={"alias": second["alias"]})
    for port in ports:
        assert await _mirrored_to(port) == [] and await _ingress_qdisc(port) == "", port
