"""The agent reports each NIC exactly as libvirt placed it: slot, tap, alias, model, link, boot."""

from __future__ import annotations

from typing import Any

import pytest

from shared_schema.nic import PciAddress
from vdsm_agent.live_xml import LiveNic, parse_nics

# Modelled on what virsh dumpxml shows for a running guest with one NIC of each kind (trimmed).
LIVE_DOMAIN = """\
<domain type='qemu' id='7'>
  <name>demo</name>
  <uuid>6f1b7c1e-3d5a-4a55-9b0c-2f6e8d7a9b10</uuid>
  <memory unit='KiB'>131072</memory>
  <currentMemory unit='KiB'>131072</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64' machine='pc-i440fx-8.2'>hvm</type>
    <kernel>/var/lib/hpt/vmlinuz</kernel>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='cdrom'>
      <target dev='hdc' bus='ide'/>
      <readonly/>
      <boot order='100'/>
      <alias name='ide0-1-0'/>
      <address type='drive' controller='0' bus='1' target='0' unit='0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <alias name='usb'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'>
      <alias name='pci.0'/>
    </controller>
    <interface type='bridge'>
      <mac address='00:1a:4a:16:01:51'/>
      <source bridge='ovirtmgmt'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <boot order='2'/>
      <alias name='ua-x'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <interface type='direct'>
      <mac address='00:1a:4a:16:01:52'/>
      <source dev='eth1' mode='bridge'/>
      <target dev='macvtap0'/>
      <model type='e1000'/>
      <alias name='ua-y'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </interface>
    <interface type='ethernet'>
      <mac address='00:1a:4a:16:01:53'/>
      <target dev='vnet4' managed='yes'/>
      <model type='rtl8139'/>
      <link state='down'/>
      <alias name='ua-z'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </interface>
    <interface type='hostdev' managed='yes'>
      <mac address='00:1a:4a:16:01:54'/>
      <driver name='vfio'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x3b' slot='0x02' function='0x7'/>
      </source>
      <alias name='ua-vf'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/hpt/demo.log'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+107:+107</label>
  </seclabel>
</domain>
"""


@pytest.fixture(scope="module")
def nics() -> list[LiveNic]:
    return parse_nics(LIVE_DOMAIN)


def test_every_interface_in_document_order(nics: list[LiveNic]) -> None:
    assert [(n.alias, n.interface_type) for n in nics] == [
        ("ua-x", "bridge"),
        ("ua-y", "direct"),
        ("ua-z", "ethernet"),
        ("ua-vf", "hostdev"),
    ]


def test_bridge_nic(nics: list[LiveNic]) -> None:
    assert nics[0] == LiveNic(
        alias="ua-x",
        mac="00:1a:4a:16:01:51",
        interface_type="bridge",
        model="virtio",
        network="ovirtmgmt",
        address=PciAddress(0, 0, 0x03, 0),
        tap="vnet3",
        link_state="up",
        boot_order=2,
    )


def test_direct_nic(nics: list[LiveNic]) -> None:
    assert nics[1] == LiveNic(
        alias="ua-y",
        mac="00:1a:4a:16:01:52",
        interface_type="direct",
        model="e1000",
        network="eth1",
        address=PciAddress(0, 0, 0x04, 0),
        tap="macvtap0",
        link_state="up",
        boot_order=None,
    )


def test_ethernet_nic_with_link_down(nics: list[LiveNic]) -> None:
    assert nics[2] == LiveNic(
        alias="ua-z",
        mac="00:1a:4a:16:01:53",
        interface_type="ethernet",
        model="rtl8139",
        network="",
        address=PciAddress(0, 0, 0x05, 0),
        tap="vnet4",
        link_state="down",
        boot_order=None,
    )


def test_hostdev_nic_guest_address_not_vf_address(nics: list[LiveNic]) -> None:
    # The VF's host address sits inside <source>; the NIC's own slot is the one in the guest.
    assert nics[3] == LiveNic(
        alias="ua-vf",
        mac="00:1a:4a:16:01:54",
        interface_type="hostdev",
        model="",
        network="",
        address=PciAddress(0, 0, 0x06, 0),
        tap="",
        link_state="up",
        boot_order=None,
    )


EXPECTED_PARAMS: list[dict[str, Any]] = [
    {
        "type": "interface",
        "device": "bridge",
        "alias": "ua-x",
        "macAddr": "00:1a:4a:16:01:51",
        "nicModel": "virtio",
        "network": "ovirtmgmt",
        "address": {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x03", "function": "0x0"},
        "name": "vnet3",
        "linkActive": True,
        "bootOrder": 2,
    },
    {
        "type": "interface",
        "device": "vnlink",
        "alias": "ua-y",
        "macAddr": "00:1a:4a:16:01:52",
        "nicModel": "e1000",
        "network": "eth1",
        "address": {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x04", "function": "0x0"},
        "name": "macvtap0",
        "linkActive": True,
        "bootOrder": None,
    },
    {
        "type": "interface",
        "device": "bridgeless",
        "alias": "ua-z",
        "macAddr": "00:1a:4a:16:01:53",
        "nicModel": "rtl8139",
        "network": "",
        "address": {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x05", "function": "0x0"},
        "name": "vnet4",
        "linkActive": False,
        "bootOrder": None,
    },
    {
        "type": "interface",
        "device": "sriov",
        "alias": "ua-vf",
        "macAddr": "00:1a:4a:16:01:54",
        "nicModel": "",
        "network": "",
        "address": {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x06", "function": "0x0"},
        "name": "",
        "linkActive": True,
        "bootOrder": None,
    },
]


@pytest.mark.parametrize("index", range(4), ids=["bridge", "vnlink", "bridgeless", "sriov"])
def test_reported_params(nics: list[LiveNic], index: int) -> None:
    # The wire form the engine reads: VDSM's device dict, unchanged by the typed answers.
    assert nics[index].placed().to_params() == EXPECTED_PARAMS[index]


def test_bytes_and_text_read_the_same() -> None:
    assert parse_nics(LIVE_DOMAIN.encode()) == parse_nics(LIVE_DOMAIN)


def test_guest_without_nics() -> None:
    assert parse_nics("<domain type='qemu'><name>g</name><devices><memballoon model='none'/></devices></domain>") == []
    assert parse_nics("<domain type='qemu'><name>g</name></domain>") == []


def test_unplaced_nic_and_other_kinds() -> None:
    # A NIC not yet given an address, and a libvirt network NIC, which we report under libvirt's name.
    xml = """
    <domain type='qemu'>
      <devices>
        <interface type='network'>
          <mac address='52:54:00:00:00:01'/>
          <source network='default'/>
          <model type='virtio'/>
        </interface>
      </devices>
    </domain>
    """
    (nic,) = parse_nics(xml)
    assert nic.address is None
    assert nic.placed().to_params() == {
        "type": "interface",
        "device": "network",
        "alias": "",
        "macAddr": "52:54:00:00:00:01",
        "nicModel": "virtio",
        "network": "default",
        "address": None,
        "name": "",
        "linkActive": True,
        "bootOrder": None,
    }


def test_comments_and_namespaced_metadata_inside_an_interface_are_not_its_parts() -> None:
    # Each part is read from the interface's first child of that name, whatever else sits there.
    xml = """
    <domain type='qemu'>
      <devices>
        <interface type='bridge'>
          <!-- a comment where a part could be -->
          <mac address='52:54:00:00:00:02'/>
          <source bridge='br0'/>
          <x:alias xmlns:x='urn:elsewhere' name='not-this-one'/>
          <alias name='ua-first'/>
          <alias name='ua-second'/>
          <target dev='vnet4'/>
        </interface>
      </devices>
    </domain>
    """
    (nic,) = parse_nics(xml)
    assert (nic.alias, nic.mac, nic.network, nic.tap) == ("ua-first", "52:54:00:00:00:02", "br0", "vnet4")
