"""Monitoring sees what is true on the host: a NIC attached or detached with virsh, behind the
agent's back, moves the VM's device hash in Host.getAllVmStats, and Host.getVMFullList then
shows the VM's NICs as libvirt has them."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from devtools.agent_proc import AgentClient
from tests.e2e.conftest import LIBVIRT_URI, Guest

MAC = "52:54:00:ac:00:01"


async def _virsh(*args: str) -> None:
    await asyncio.to_thread(subprocess.run, ["virsh", "-c", LIBVIRT_URI, *args], check=True, capture_output=True)


async def _hash(agent: AgentClient, vm_id: str) -> str:
    statuses = {vm["vmId"]: vm for vm in await agent.ok("Host.getAllVmStats")}
    assert set(statuses[vm_id]) == {"vmId", "vmName", "status", "hash"}  # no device lists in the poll
    return str(statuses[vm_id]["hash"])


async def _macs(agent: AgentClient, vm_id: str) -> set[str]:
    (vm,) = await agent.ok("Host.getVMFullList", vmList=[vm_id])
    assert vm["hash"] == await _hash(agent, vm_id)
    return {n["macAddr"] for n in vm["nics"]}


async def test_a_nic_attached_and_detached_behind_the_agents_back_moves_the_hash(
    agent: AgentClient, clean_guest: Guest, bridge: str, tmp_path: Path
) -> None:
    vm = clean_guest.uuid
    before = await _hash(agent, vm)
    assert MAC not in await _macs(agent, vm)
    device = tmp_path / "nic.xml"
    device.write_text(
        f"<interface type='bridge'><source bridge='{bridge}'/><mac address='{MAC}'/><model type='e1000'/>"
        "<alias name='ua-virsh'/></interface>"
    )

    await _virsh("attach-device", vm, str(device), "--live")
    attached = await _hash(agent, vm)
    assert attached != before
    assert MAC in await _macs(agent, vm)

    await _virsh("detach-device", vm, str(device), "--live")
    for _ in range(100):  # the guest releases it (an e1000 without a driver: at once)
        if await _hash(agent, vm) != attached:
            break
        await asyncio.sleep(0.1)
    assert await _hash(agent, vm) == before  # the same devices as before: the same hash
    assert MAC not in await _macs(agent, vm)
