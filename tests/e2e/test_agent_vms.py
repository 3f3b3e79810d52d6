"""VM lifecycle and host verbs through a real agent: what the engine needs to run a VM."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import pytest

from devtools import guest
from devtools.agent_proc import AgentClient
from vdsm_agent.live_xml import parse_nics


@pytest.fixture
async def vm_id(libvirt_conn: libvirt.virConnect) -> AsyncIterator[str]:
    vm_id = str(uuid.uuid4())
    yield vm_id
    with contextlib.suppress(libvirt.libvirtError):
        libvirt_conn.lookupByUUIDString(vm_id).destroy()


async def test_create_runs_the_vm_with_its_nics_and_destroy_stops_it(
    agent: AgentClient, libvirt_conn: libvirt.virConnect, consoles: Path, bridge: str, vm_id: str
) -> None:
    console = guest.console_of(vm_id)  # the agent's own file, named by the VM's id
    console.unlink(missing_ok=True)
    spec = guest.spec("hpt-agent-created", vm_id=vm_id).to_params()
    spec["nics"] = [
        {"type": "interface", "device": "bridge", "network": bridge, "macAddr": "52:54:00:a6:00:01",
         "nicModel": "pv", "id": "boot", "bootOrder": 1},
        {"type": "interface", "device": "bridge", "network": bridge, "macAddr": "52:54:00:a6:00:02",
         "nicModel": "e1000", "id": "second", "address": {"type": "pci", "slot": "0x0a"}},
    ]  # fmt: skip
    created = await agent.ok("VM.create", **spec)
    assert (created["vmId"], created["status"]) == (vm_id, "Up")
    reported = {n["alias"]: n for n in created["nics"]}
    assert set(reported) == {"ua-boot", "ua-second"}
    assert reported["ua-second"]["address"]["slot"] == "0x0a"
    assert reported["ua-boot"]["address"]["type"] == "pci"  # placed by libvirt, reported back
    await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 90.0)

    statuses = {vm["vmId"]: vm for vm in await agent.ok("Host.getAllVmStats")}
    assert statuses[vm_id]["status"] == "Up"
    assert statuses[vm_id]["hash"] == created["hash"]  # the devices have not changed since
    (full,) = await agent.ok("Host.getVMFullList", vmList=[vm_id])
    assert {n["macAddr"] for n in full["nics"]} == {"52:54:00:a6:00:01", "52:54:00:a6:00:02"}
    assert full["hash"] == created["hash"]
    live_macs = {n.mac for n in parse_nics(libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0))}
    assert live_macs == {"52:54:00:a6:00:01", "52:54:00:a6:00:02"}

    again = await agent.error("VM.create", **spec)
    assert again.code == 4

    assert await agent.ok("VM.destroy", vmId=vm_id) == {"vmId": vm_id, "status": "Down"}
    assert vm_id not in {vm["vmId"] for vm in await agent.ok("Host.getAllVmStats")}
    assert await agent.ok("Host.getVMFullList", vmList=[vm_id]) == []
    gone = await agent.error("VM.destroy", vmId=vm_id)
    assert gone.code == 1


async def test_create_with_a_bad_spec_is_refused_before_libvirt(agent: AgentClient, vm_id: str) -> None:
    refused = await agent.error("VM.create", vmId=vm_id, vmName="x", memSize="lots")
    assert refused.code == -32602 and "memSize" in refused.message
    refused = await agent.error("VM.create", vmId=vm_id, vmName="x", kernel="nonexistent-vmlinuz")
    assert refused.code == -32602 and "no image named 'nonexistent-vmlinuz'" in refused.message
    assert vm_id not in {vm["vmId"] for vm in await agent.ok("Host.getAllVmStats")}


async def test_capabilities_report_this_hosts_libvirt_and_bridges(
    agent: AgentClient, libvirt_conn: libvirt.virConnect, bridge: str
) -> None:
    caps = await agent.ok("Host.getCapabilities")
    version = libvirt_conn.getLibVersion()
    assert caps["libvirtVersion"] == f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}"
    assert caps["qemuVersion"].count(".") == 2
    assert bridge in caps["bridges"]
    assert bridge not in caps["hostDevices"] and "lo" not in caps["hostDevices"]
    # libvirt's model names, each once (pv is virtio): the models test_agent_nics plugs into the guest.
    assert caps["nicModels"] == ["virtio", "e1000", "e1000e", "rtl8139"]
