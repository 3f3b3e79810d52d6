"""Read NICs back from a domain's live XML, as libvirt placed them (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from shared_schema.answers import PlacedNic
from shared_schema.nic import PciAddress

# libvirt's interface type -> the seed's device kind; other types are reported under libvirt's name.
_DEVICE_KIND = {
    "bridge": "bridge",
    "direct": "vnlink",
    "hostdev": "sriov",
    "ethernet": "bridgeless",
}


@dataclass(frozen=True)
class LiveNic:
    alias: str
    mac: str
    interface_type: str  # libvirt's: bridge, direct, hostdev, ethernet, network, ...
    model: str
    network: str  # bridge, network, or host device; '' when none
    address: PciAddress | None
    tap: str
    link_state: str
    boot_order: int | None

    def placed(self) -> PlacedNic:
        """What the agent reports to the engine (``PlacedNic.to_params`` gives VDSM's device dict)."""
        return PlacedNic(
            alias=self.alias,
            mac=self.mac,
            device=_DEVICE_KIND.get(self.interface_type, self.interface_type),
            model=self.model,
            network=self.network,
            address=self.address,
            tap=self.tap,
            link_active=self.link_state != "down",
            boot_order=self.boot_order,
        )


def _address(element: etree._Element | None) -> PciAddress | None:
    if element is None or element.get("type") != "pci":
        return None
    return PciAddress(*(int(element.get(k, "0"), 16) for k in ("domain", "bus", "slot", "function")))


def _attr(children: dict[str, etree._Element], child: str, name: str, default: str = "") -> str:
    element = children.get(child)
    return default if element is None else str(element.get(name, default))


def parse_nics(domain_xml: str | bytes) -> list[LiveNic]:
    root = etree.fromstring(domain_xml.encode() if isinstance(domain_xml, str) else domain_xml)
    nics = []
    for iface in root.iterfind("devices/interface"):
        # One pass over the interface's children (the first of each tag, as find() would give):
        # monitoring reads every NIC of every VM on each poll.
        children: dict[str, etree._Element] = {}
        for child in iface:
            if isinstance(child.tag, str):
                children.setdefault(child.tag, child)
        network = ""
        source = children.get("source")
        if source is not None:
            network = source.get("bridge") or source.get("network") or source.get("dev") or ""
        boot = _attr(children, "boot", "order")
        nics.append(
            LiveNic(
                alias=_attr(children, "alias", "name"),
                mac=_attr(children, "mac", "address"),
                interface_type=iface.get("type", ""),
                model=_attr(children, "model", "type"),
                network=network,
                address=_address(children.get("address")),
                tap=_attr(children, "target", "dev"),
                link_state=_attr(children, "link", "state", "up"),
                boot_order=int(boot) if boot else None,
            )
        )
    return nics


def interface_element(domain_xml: str | bytes, alias: str) -> etree._Element | None:
    """The NIC's ``<interface>`` exactly as the live XML has it (what libvirt's updateDevice takes
    back with a change), or None when the VM has no NIC of that alias."""
    root = etree.fromstring(domain_xml.encode() if isinstance(domain_xml, str) else domain_xml)
    for iface in root.iterfind("devices/interface"):
        if iface.xpath("alias/@name") == [alias]:
            return iface
    return None
