"""A q35 guest through a real agent: VM.create with emulatedMachine 'q35' gives it free PCIe root
ports for hot plug (the pcie_hotplug_ports setting: 2 here) beyond what its boot NIC takes; hot
plugs take them until none is left (49, saying so), an unplug frees one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from lxml import etree

from devtools import guest
from devtools.agent_proc import AgentClient, run_agent
from vdsm_agent import pcie
from vdsm_agent.live_xml import parse_nics

PORTS = 2


def nic(bridge: str, n: int, **extra: Any) -> dict[str, Any]:
    mac = f"52:54:00:ad:00:{n:02x}"
    return {"type": "interface", "device": "bridge", "network": bridge, "macAddr": mac, "nicModel": "pv",
            "alias": f"ua-q{n}", **extra}  # fmt: skip


@pytest.fixture
async def q35_agent(output_dir: Path) -> AsyncIterator[AgentClient]:
    async with run_agent(output_dir / "e2e", pcie_hotplug_ports=str(PORTS)) as client:
        yield client


@pytest.fixture
async def q35_vm(
    q35_agent: AgentClient, libvirt_conn: libvirt.virConnect, consoles: Path, bridge: str
) -> AsyncIterator[str]:
    """A q35 tiny guest with one boot NIC (its root port is not one of the hot-plug ports), booted."""
    vm_id = str(uuid.uuid4())
    guest.console_of(vm_id).unlink(missing_ok=True)
    params = {**guest.spec("hpt-q35", vm_id).to_params(), "emulatedMachine": "q35", "nics": [nic(bridge, 0)]}
    created = await q35_agent.ok("VM.create", **params)
    try:
        assert created["status"] == "Up"
        await asyncio.to_thread(guest.wait_for_console, guest.console_of(vm_id), guest.READY_MARKER, 120.0)
        yield vm_id
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            libvirt_conn.lookupByUUIDString(vm_id).destroy()


async def test_q35_guest_takes_as_many_hot_plugs_as_it_has_free_root_ports(
    q35_agent: AgentClient, q35_vm: str, libvirt_conn: libvirt.virConnect, bridge: str
) -> None:
    vm_id, console = q35_vm, guest.console_of(q35_vm)
    domain = libvirt_conn.lookupByUUIDString(vm_id)
    live = domain.XMLDesc(0)
    assert "q35" in etree.fromstring(live).find("os/type").get("machine", "")  # e.g. pc-q35-7.2
    assert pcie.free_root_ports(live)[0] == PORTS and pcie.started_with(live) == PORTS

    for n in (1, 2):
        seen = console.stat().st_size
        placed = (await q35_agent.ok("VM.hotplugNic", vmId=vm_id, nic=nic(bridge, n)))["nic"]
        assert int(placed["address"]["bus"], 16) > 0  # behind a root port, not on the root complex
        line = await asyncio.to_thread(guest.wait_for_console, console, "NETDEV-ADDED", 60.0, seen)
        assert line.endswith(placed["macAddr"])  # the guest's kernel took it (PCIe hot plug)
    assert pcie.free_root_ports(domain.XMLDesc(0))[0] == 0

    before = domain.XMLDesc(0)
    refused = await q35_agent.error("VM.hotplugNic", vmId=vm_id, nic=nic(bridge, 3))
    assert refused.code == 49
    assert f"no free PCIe root port left for hot plug: the VM was started with {PORTS}" in refused.message
    assert domain.XMLDesc(0) == before

    seen = console.stat().st_size
    await q35_agent.ok("VM.hotunplugNic", vmId=vm_id, nic={"alias": "ua-q1"})
    await asyncio.to_thread(guest.wait_for_console, console, "NETDEV-REMOVED", 60.0, seen)
    assert pcie.free_root_ports(domain.XMLDesc(0))[0] == 1

    seen = console.stat().st_size
    await q35_agent.ok("VM.hotplugNic", vmId=vm_id, nic=nic(bridge, 3))
    line = await asyncio.to_thread(guest.wait_for_console, console, "NETDEV-ADDED", 60.0, seen)
    assert line.endswith("52:54:00:ad:00:03")
    assert {n.alias for n in parse_nics(domain.XMLDesc(0))} == {"ua-q0", "ua-q2", "ua-q3"}
