"""q35 hot plug: free PCIe root ports read from the live XML, and hotplugNic refusing in words when
none is left (libvirt itself would only say "No more available PCI slots")."""

from __future__ import annotations

import uuid

import pytest

from shared_schema import errors
from shared_schema.nic import NicSpec
from shared_schema.vm import VmSpec
from vdsm_agent import pcie
from vdsm_agent.domain_xml import build_domain, to_string
from vdsm_agent.mirroring import PortMirror
from vdsm_agent.nics import NicService
from vdsm_agent.simulated import SimulatedHostNet, SimulatedHypervisor


def port(index: int, hotplug: str = "") -> str:
    target = f"<target chassis='{index}' port='0x{7 + index:x}' hotplug='{hotplug}'/>" if hotplug else ""
    return (
        f"<controller type='pci' index='{index}' model='pcie-root-port'><model name='pcie-root-port'/>{target}"
        f"<address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x{index - 1:x}'/></controller>"
    )


def live(*devices: str, machine: str = "pc-q35-7.2", started_with: int | None = 2) -> str:
    """A running domain's XML as libvirt 9.0 gives it (shortened to what matters here)."""
    meta = (
        f"<metadata><hppcie:pcie xmlns:hppcie='{pcie.PCIE_NS}' hotplugPorts='{started_with}'/></metadata>"
        if started_with is not None
        else ""
    )
    return (
        f"<domain type='qemu' id='7'><name>g</name>{meta}<os><type arch='x86_64' machine='{machine}'>hvm</type>"
        f"</os><devices><controller type='pci' index='0' model='pcie-root'/>{''.join(devices)}"
        "<controller type='sata' index='0'><address type='pci' domain='0x0000' bus='0x00' slot='0x1f' "
        "function='0x2'/></controller></devices></domain>"
    )


def nic_on(bus: int) -> str:
    return (
        f"<interface type='bridge'><mac address='52:54:00:00:00:{bus:02x}'/><source bridge='br0'/>"
        f"<model type='virtio'/><alias name='ua-b{bus}'/>"
        f"<address type='pci' domain='0x0000' bus='0x{bus:02x}' slot='0x00' function='0x0'/></interface>"
    )


def test_a_port_is_taken_by_whatever_sits_on_its_bus() -> None:
    assert pcie.free_root_ports(live(port(1), port(2), port(3), nic_on(1))) == (2, 3)
    bridge = (
        "<controller type='pci' index='4' model='pcie-to-pci-bridge'><model name='pcie-pci-bridge'/>"
        "<address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></controller>"
    )
    assert pcie.free_root_ports(live(port(1), port(2), port(3), nic_on(1), bridge)) == (1, 3)


def test_a_hostdev_source_address_is_the_hosts_and_a_port_without_hotplug_does_not_count() -> None:
    hostdev = (
        "<interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:09'/><source>"
        "<address type='pci' domain='0x0000' bus='0x02' slot='0x10' function='0x1'/></source>"
        "<alias name='ua-vf'/><address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>"
        "</interface>"
    )
    assert pcie.free_root_ports(live(port(1), port(2), port(3, hotplug="off"), hostdev)) == (1, 2)


def test_no_free_port_says_so_in_words_on_q35_only() -> None:
    full = live(port(1), port(2), nic_on(1), nic_on(2))
    assert pcie.no_free_port(full) == (
        "no free PCIe root port left for hot plug: the VM was started with 2 (pcie_hotplug_ports); "
        "unplug a device to free one"
    )
    assert pcie.no_free_port(live(port(1), port(2), nic_on(1))) is None
    assert pcie.no_free_port(live(port(1), nic_on(1), started_with=None)) == (
        "no free PCIe root port left for hot plug: all 1 root ports of the VM are taken"
    )
    assert pcie.no_free_port(live(machine="pc-i440fx-7.2")) is None  # the root bus takes hot plugs
    assert pcie.started_with(live(started_with=16)) == 16 and pcie.started_with(live(started_with=None)) is None


async def test_hotplug_into_a_full_q35_guest_is_49_before_libvirt_is_asked() -> None:
    hv = SimulatedHypervisor()
    nics = NicService(hv, PortMirror(hv, SimulatedHostNet(hv)), unplug_timeout=1)
    await hv.open(nics.on_device_event)
    vm_id = str(uuid.uuid4())
    await hv.create(to_string(build_domain(VmSpec(vm_id, "full", machine="q35"), hotplug_ports=0)))
    params = {"type": "interface", "device": "bridgeless", "macAddr": "52:54:00:00:01:01", "nicModel": "pv", "id": "x"}
    with pytest.raises(errors.WireError) as refused:
        await nics.hotplug(vm_id, NicSpec.from_params(params))
    assert refused.value.error is errors.HOTPLUG_NIC
    assert "no free PCIe root port left for hot plug: the VM was started with 0" in refused.value.message
    assert "ua-x" not in (await hv.domain(vm_id)).xml
    # An explicit address names its place itself: libvirt decides.
    placed = await nics.hotplug(vm_id, NicSpec.from_params({**params, "address": "0000:00:05.0"}))
    assert str(placed.nic.address) == "0000:00:05.0"
