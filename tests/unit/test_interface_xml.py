"""Every hotplugNic parameter becomes exactly the libvirt <interface> XML that VDSM would send."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from shared_schema.nic import NicSpec
from vdsm_agent.interface_xml import build_interface, to_string

MAC = "00:1a:4a:16:01:51"
_PARSER = etree.XMLParser(remove_blank_text=True)


def canonical(xml: str) -> str:
    """Canonical XML: attribute order, quoting and blank text between elements do not matter."""
    element = etree.fromstring(xml.strip(), _PARSER)
    return etree.tostring(element, method="c14n").decode()


def built(**nic: Any) -> str:
    """The XML the agent sends to libvirt for a seed-shaped ``nic`` dict, in canonical form."""
    params: dict[str, Any] = {"type": "interface", "macAddr": MAC, "nicModel": "pv", "alias": "ua-nic1", **nic}
    return canonical(to_string(build_interface(NicSpec.from_params(params))))


def test_normaliser_ignores_layout_but_not_content() -> None:
    assert canonical("<a y='2' x='1'>\n  <b/>\n</a>") == canonical('<a x="1" y="2"><b></b></a>')
    assert canonical("<a x='1'/>") != canonical("<a x='2'/>")


def test_bridge() -> None:
    assert built(device="bridge", network="ovirtmgmt") == canonical(
        """
        <interface type='bridge'>
          <mac address='00:1a:4a:16:01:51'/>
          <source bridge='ovirtmgmt'/>
          <model type='virtio'/>
          <alias name='ua-nic1'/>
        </interface>
        """
    )


def test_vnlink_is_macvtap_direct_in_bridge_mode() -> None:
    assert built(device="vnlink", network="eth1") == canonical(
        """
        <interface type='direct'>
          <mac address='00:1a:4a:16:01:51'/>
          <source dev='eth1' mode='bridge'/>
          <model type='virtio'/>
          <alias name='ua-nic1'/>
        </interface>
        """
    )


def test_sriov_is_managed_hostdev_with_vf_address_and_no_model() -> None:
    expected = canonical(
        """
        <interface type='hostdev' managed='yes'>
          <mac address='00:1a:4a:16:01:51'/>
          <source>
            <address type='pci' domain='0x0000' bus='0x05' slot='0x10' function='0x1'/>
          </source>
          <alias name='ua-nic1'/>
        </interface>
        """
    )
    vf_dict = {"type": "pci", "domain": "0x0000", "bus": "0x05", "slot": "0x10", "function": "0x1"}
    assert built(device="sriov", specParams={"vfAddress": vf_dict}) == expected
    # The text form of the VF address, and a model the seed sends anyway, change nothing.
    assert built(device="sriov", nicModel="e1000", specParams={"vfAddress": "0000:05:10.1"}) == expected


def test_bridgeless_is_ethernet_without_source() -> None:
    assert built(device="bridgeless") == canonical(
        """
        <interface type='ethernet'>
          <mac address='00:1a:4a:16:01:51'/>
          <model type='virtio'/>
          <alias name='ua-nic1'/>
        </interface>
        """
    )


@pytest.mark.parametrize(
    ("seed_model", "libvirt_model"),
    [("pv", "virtio"), ("virtio", "virtio"), ("e1000", "e1000"), ("rtl8139", "rtl8139"), ("e1000e", "e1000e")],
)
def test_model(seed_model: str, libvirt_model: str) -> None:
    assert built(device="bridgeless", nicModel=seed_model) == canonical(
        f"""
        <interface type='ethernet'>
          <mac address='00:1a:4a:16:01:51'/>
          <model type='{libvirt_model}'/>
          <alias name='ua-nic1'/>
        </interface>
        """
    )


def test_mac_is_written_in_lower_case() -> None:
    assert built(device="bridgeless", macAddr="00:1A:4A:16:01:5F") == canonical(
        """
        <interface type='ethernet'>
          <mac address='00:1a:4a:16:01:5f'/>
          <model type='virtio'/>
          <alias name='ua-nic1'/>
        </interface>
        """
    )


def test_alias_from_nic_id() -> None:
    params = {"type": "interface", "device": "bridgeless", "macAddr": MAC, "nicModel": "pv", "id": "7f3c"}
    assert canonical(to_string(build_interface(NicSpec.from_params(params)))) == canonical(
        """
        <interface type='ethernet'>
          <mac address='00:1a:4a:16:01:51'/>
          <model type='virtio'/>
          <alias name='ua-7f3c'/>
        </interface>
        """
    )


def test_alias_from_mac_when_neither_alias_nor_id() -> None:
    params = {"type": "interface", "device": "bridgeless", "macAddr": MAC, "nicModel": "pv"}
    assert canonical(to_string(build_interface(NicSpec.from_params(params)))) == canonical(
        """
        <interface type='ethernet'>
          <mac address='00:1a:4a:16:01:51'/>
          <model type='virtio'/>
          <alias name='ua-mac-001a4a160151'/>
        </interface>
        """
    )


def test_explicit_pci_address() -> None:
    address = {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x0c", "function": "0x0"}
    expected = canonical(
        """
        <interface type='bridge'>
          <mac address='00:1a:4a:16:01:51'/>
          <source bridge='br0'/>
          <model type='virtio'/>
          <alias name='ua-nic1'/>
          <address type='pci' domain='0x0000' bus='0x00' slot='0x0c' function='0x0'/>
        </interface>
        """
    )
    assert built(device="bridge", network="br0", address=address) == expected
    # Numbers, a missing domain/bus/function, and the text form all mean the same slot.
    assert built(device="bridge", network="br0", address={"slot": 12}) == expected
    assert built(device="bridge", network="br0", address="0000:00:0c.0") == expected


def test_boot_order() -> None:
    assert built(device="bridge", network="br0", bootOrder=2) == canonical(
        """
        <interface type='bridge'>
          <mac address='00:1a:4a:16:01:51'/>
          <source bridge='br0'/>
          <model type='virtio'/>
          <boot order='2'/>
          <alias name='ua-nic1'/>
        </interface>
        """
    )


def test_no_boot_element_for_boot_order_zero() -> None:
    assert built(device="bridge", network="br0", bootOrder="0") == built(device="bridge", network="br0")


def test_bandwidth_inbound_and_outbound() -> None:
    spec = {
        "inbound": {"average": 1000, "peak": 5000, "burst": 1024},
        "outbound": {"average": "128"},
    }
    assert built(device="bridge", network="br0", specParams=spec) == canonical(
        """
        <interface type='bridge'>
          <mac address='00:1a:4a:16:01:51'/>
          <source bridge='br0'/>
          <model type='virtio'/>
          <bandwidth>
            <inbound average='1000' peak='5000' burst='1024'/>
            <outbound average='128'/>
          </bandwidth>
          <alias name='ua-nic1'/>
        </interface>
        """
    )


def test_outbound_only_bandwidth() -> None:
    spec = {"outbound": {"average": 64, "burst": 32}}
    assert built(device="bridgeless", specParams=spec) == canonical(
        """
        <interface type='ethernet'>
          <mac address='00:1a:4a:16:01:51'/>
          <model type='virtio'/>
          <bandwidth>
            <outbound average='64' burst='32'/>
          </bandwidth>
          <alias name='ua-nic1'/>
        </interface>
        """
    )


def test_link_down_when_link_inactive() -> None:
    assert built(device="bridgeless", linkActive=False) == canonical(
        """
        <interface type='ethernet'>
          <mac address='00:1a:4a:16:01:51'/>
          <model type='virtio'/>
          <link state='down'/>
          <alias name='ua-nic1'/>
        </interface>
        """
    )
    assert built(device="bridgeless", linkActive=True) == built(device="bridgeless")


def test_promisc_does_not_reach_libvirt() -> None:
    # Port mirroring is done with tc after the plug; the <interface> carries no trace of it.
    assert built(device="bridge", network="br0", promisc="blue,red") == built(device="bridge", network="br0")


def test_every_field_together() -> None:
    nic = {
        "device": "bridge",
        "network": "ovirtmgmt",
        "macAddr": "00:1a:4a:16:01:52",
        "nicModel": "e1000",
        "alias": "ua-full",
        "bootOrder": "3",
        "address": {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x1f", "function": "0x0"},
        "specParams": {"inbound": {"average": 10, "peak": 20, "burst": 30}, "outbound": {"average": 40}},
        "linkActive": False,
    }
    assert built(**nic) == canonical(
        """
        <interface type='bridge'>
          <mac address='00:1a:4a:16:01:52'/>
          <source bridge='ovirtmgmt'/>
          <model type='e1000'/>
          <bandwidth>
            <inbound average='10' peak='20' burst='30'/>
            <outbound average='40'/>
          </bandwidth>
          <link state='down'/>
          <boot order='3'/>
          <alias name='ua-full'/>
          <address type='pci' domain='0x0000' bus='0x00' slot='0x1f' function='0x0'/>
        </interface>
        """
    )


def test_sriov_with_every_field() -> None:
    nic = {
        "device": "sriov",
        "bootOrder": 1,
        "address": "0000:00:07.0",
        "specParams": {"vfAddress": "0000:3b:02.7", "inbound": {"average": 500}},
        "linkActive": False,
    }
    assert built(**nic) == canonical(
        """
        <interface type='hostdev' managed='yes'>
          <mac address='00:1a:4a:16:01:51'/>
          <source>
            <address type='pci' domain='0x0000' bus='0x3b' slot='0x02' function='0x7'/>
          </source>
          <bandwidth>
            <inbound average='500'/>
          </bandwidth>
          <link state='down'/>
          <boot order='1'/>
          <alias name='ua-nic1'/>
          <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
        </interface>
        """
    )
