"""Unplug succeeds only when the guest releases the NIC; a guest that does not gets code 50."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import pytest

from devtools.agent_proc import AgentClient, run_agent
from tests.e2e.conftest import Guest
from vdsm_agent.live_xml import parse_nics


@pytest.fixture
async def impatient_agent(output_dir: Path) -> AsyncIterator[AgentClient]:
    """An agent that waits only 50 ms for the guest: shorter than any guest takes."""
    async with run_agent(output_dir / "e2e", unplug_timeout="0.05") as client:
        yield client


@pytest.fixture
async def guest_without_os(libvirt_conn: libvirt.virConnect) -> AsyncIterator[str]:
    """A running domain with nothing to boot: its firmware never answers an ACPI eject."""
    vm_id = str(uuid.uuid4())
    xml = f"""<domain type='qemu'><name>hpt-no-os-{vm_id[:8]}</name><uuid>{vm_id}</uuid>
      <memory unit='MiB'>64</memory><os><type arch='x86_64' machine='pc'>hvm</type></os>
      <features><acpi/></features><devices><memballoon model='none'/></devices></domain>"""
    dom = libvirt_conn.createXML(xml, 0)
    yield vm_id
    with contextlib.suppress(libvirt.libvirtError):
        dom.destroy()


async def test_a_guest_that_never_releases_the_nic_gets_code_50(
    libvirt_conn: libvirt.virConnect, output_dir: Path, guest_without_os: str, bridge: str
) -> None:
    mac = "52:54:00:a8:00:01"
    nic = {"type": "interface", "device": "bridge", "network": bridge, "macAddr": mac, "nicModel": "e1000", "id": "x"}
    async with run_agent(output_dir / "e2e", unplug_timeout="2") as agent:
        await agent.ok("VM.hotplugNic", vmId=guest_without_os, nic=nic)
        refused = await agent.error("VM.hotunplugNic", vmId=guest_without_os, nic={"alias": "ua-x"})
    assert refused.code == 50
    assert "did not release ua-x within 2 s" in refused.message
    assert refused.data == {"reason": "timeout"}
    dom = libvirt_conn.lookupByUUIDString(guest_without_os)
    assert mac in {n.mac for n in parse_nics(dom.XMLDesc(0))}  # still there, and the answer says so


async def test_a_removal_after_the_timeout_is_not_lost(
    impatient_agent: AgentClient, clean_guest: Guest, bridge: str
) -> None:
    mac = "52:54:00:a8:00:02"
    nic = {"type": "interface", "device": "bridge", "network": bridge, "macAddr": mac, "nicModel": "pv", "id": "late"}
    await impatient_agent.ok("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic)
    await clean_guest.wait_console(mac)  # the guest has set the card up

    async def device_hash() -> str:
        vms = await impatient_agent.ok("Host.getAllVmStats")
        return next(str(vm["hash"]) for vm in vms if vm["vmId"] == clean_guest.uuid)

    async def nics() -> set[str]:
        (vm,) = await impatient_agent.ok("Host.getVMFullList", vmList=[clean_guest.uuid])
        return {n["macAddr"] for n in vm["nics"]}

    plugged = await device_hash()
    refused = await impatient_agent.error("VM.hotunplugNic", vmId=clean_guest.uuid, nic={"alias": "ua-late"})
    assert refused.code == 50 and refused.data == {"reason": "timeout"}

    # The engine's view: the device hash moves once the guest lets go, and the full list shows it.
    for _ in range(100):  # the guest acknowledges within about a second
        if await device_hash() != plugged:
            break
        await asyncio.sleep(0.1)
    assert await device_hash() != plugged
    assert mac not in await nics()
    for _ in range(20):  # the agent's log is written asynchronously to the file
        if "released device ua-late after its unplug call had given up" in impatient_agent.log.read_text():
            break
        await asyncio.sleep(0.1)
    assert "released device ua-late after its unplug call had given up" in impatient_agent.log.read_text()
