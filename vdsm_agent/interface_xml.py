"""Build the libvirt ``<interface>`` for a NIC (pure: no libvirt, no I/O).

    device      libvirt interface               source
    ----------  ------------------------------  ---------------------------------------------
    bridge      <interface type='bridge'>       <source bridge='{network}'/>
    vnlink      <interface type='direct'>       <source dev='{network}' mode='bridge'/> (macvtap)
    sriov       <interface type='hostdev'>      <source><address type='pci' .. VF ../></source>
    bridgeless  <interface type='ethernet'>     none: a tap device on no bridge

Every kind also gets <mac>, <alias name='ua-..'/> (how later calls find the device), and when
given: <model> (pv → virtio; hostdev has none), <boot order>, <address type='pci'>,
<bandwidth> from specParams inbound/outbound, <link state='down'/> when linkActive is false.
"""

from __future__ import annotations

from lxml import etree

from shared_schema.nic import Bandwidth, NicSpec, PciAddress

_LIBVIRT_TYPE = {
    "bridge": "bridge",
    "vnlink": "direct",
    "sriov": "hostdev",
    "bridgeless": "ethernet",
}


def _pci(parent: etree._Element, address: PciAddress) -> etree._Element:
    return etree.SubElement(parent, "address", address.to_params())


def _rate(parent: etree._Element, tag: str, rate: Bandwidth) -> None:
    etree.SubElement(parent, tag, {k: str(v) for k, v in rate.to_params().items()})


def build_interface(nic: NicSpec) -> etree._Element:
    iface = etree.Element("interface", type=_LIBVIRT_TYPE[nic.device])
    if nic.device == "sriov":
        iface.set("managed", "yes")  # libvirt detaches the VF from its host driver
    etree.SubElement(iface, "mac", address=nic.mac)
    if nic.device == "bridge":
        etree.SubElement(iface, "source", bridge=nic.network)
    elif nic.device == "vnlink":
        etree.SubElement(iface, "source", dev=nic.network, mode="bridge")
    elif nic.device == "sriov":
        assert nic.vf is not None  # NicSpec.from_params requires it
        _pci(etree.SubElement(iface, "source"), nic.vf)
    if nic.device != "sriov":
        etree.SubElement(iface, "model", type=nic.model)
    if nic.inbound or nic.outbound:
        bandwidth = etree.SubElement(iface, "bandwidth")
        if nic.inbound:
            _rate(bandwidth, "inbound", nic.inbound)
        if nic.outbound:
            _rate(bandwidth, "outbound", nic.outbound)
    if not nic.link_active:
        etree.SubElement(iface, "link", state="down")
    if nic.boot_order:
        etree.SubElement(iface, "boot", order=str(nic.boot_order))
    etree.SubElement(iface, "alias", name=nic.alias)
    if nic.address:
        _pci(iface, nic.address)
    return iface


def set_link_state(iface: etree._Element, active: bool) -> etree._Element:
    """Give an ``<interface>`` the link state ``active`` (up) or not (down), in place: VDSM's way of
    changing a plugged NIC's link (libvirt's updateDevice)."""
    links = iface.findall("link")
    link = links[0] if links else etree.SubElement(iface, "link")
    for extra in links[1:]:
        iface.remove(extra)
    link.attrib.clear()
    link.set("state", "up" if active else "down")
    return iface


def to_string(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")
