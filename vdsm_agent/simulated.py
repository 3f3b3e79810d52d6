"""A simulated hypervisor, for scale benchmarks only: never the proof that a feature works.

Devices live in memory.  Slots, aliases, taps and errors follow what libvirt does on an
i440fx ``pc`` machine: the first free slot from 0x02 up to 0x1f, ``vnetN`` taps, code 27 for
a slot used twice, code 1 when slots run out, code 38 for a bridge the host lacks, code 99
for a detach of an absent device, DEVICE_REMOVED shortly after a detach.  Metadata elements
are kept per domain and shown in its XML in their namespace, as libvirt's setMetadata does.
:class:`SimulatedHostNet` is port mirroring's view of such a host: the simulated taps are
ports of their bridges and filters live in memory, so the real host's tc is never touched.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from shared_schema.answers import VM_UP
from vdsm_agent.hypervisor import DeviceListener, Domain, HypervisorError, NoSuchDomain
from vdsm_agent.mirroring import HostView, MirrorError, PortFilters

_FIRST_SLOT, _LAST_SLOT = 0x02, 0x1F


@dataclass
class _SimNic:
    """A placed interface, kept as its XML text and what the simulator looks up in it: a tree per
    NIC (about 4 KiB of libxml2 memory each) would weigh on the agent's memory as measured."""

    alias: str
    slot: int | None
    tap: str | None
    bridge: str
    xml: str

    @classmethod
    def of(cls, iface: etree._Element) -> _SimNic:
        address, alias, target, source = (iface.find(t) for t in ("address", "alias", "target", "source"))
        return cls(
            alias=str(alias.get("name", "")) if alias is not None else "",
            slot=int(address.get("slot", "0"), 16) if address is not None else None,
            tap=str(target.get("dev")) if target is not None else None,
            bridge=str(source.get("bridge", "")) if source is not None else "",
            xml=etree.tostring(iface, encoding="unicode"),
        )


@dataclass
class _SimDomain:
    vm_id: str
    name: str
    xml: etree._Element | None  # until first described: then only head and tail are kept
    interfaces: list[_SimNic] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)  # namespace URI -> the element's XML
    # The domain's XML without its devices, split where the interfaces and metadata go.
    head: str = ""
    tail: str = ""


def _namespaced(xml: str, uri: str, key: str) -> str:
    """Put an element and all its children in namespace ``uri`` with prefix ``key``, as libvirt does."""
    root = etree.fromstring(xml.encode())
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = f"{{{uri}}}{etree.QName(element).localname}"
    moved = etree.Element(root.tag, nsmap={key: uri})
    moved.attrib.update(root.attrib)
    moved.extend(list(root))
    return etree.tostring(moved, encoding="unicode")


class SimulatedHypervisor:
    def __init__(self, removal_delay: float = 0.001):
        self._domains: dict[str, _SimDomain] = {}
        self._taps = itertools.count()
        self._listener: DeviceListener | None = None
        self._removal_delay = removal_delay

    async def open(self, listener: DeviceListener) -> None:
        self._listener = listener

    async def close(self) -> None:
        self._domains.clear()

    async def versions(self) -> dict[str, str]:
        return {"libvirt": "simulated", "qemu": "simulated"}

    async def network_names(self) -> list[str]:
        return []

    def _get(self, vm_id: str) -> _SimDomain:
        try:
            return self._domains[vm_id]
        except KeyError:
            raise NoSuchDomain(42, f"Domain not found: no domain with matching uuid '{vm_id}'") from None

    @staticmethod
    def _split(dom: _SimDomain) -> None:
        """Keep the domain as text around its interfaces, and let its tree go: what the simulator
        holds should not weigh on the agent's memory as measured (libvirtd holds it for real)."""
        if dom.xml is None:
            return
        marker = "<!--hotplug-sim-devices-->"
        devices = dom.xml.find("devices")
        if devices is None:
            devices = etree.SubElement(dom.xml, "devices")
        devices.append(etree.Comment("hotplug-sim-devices"))
        dom.head, dom.tail = etree.tostring(dom.xml, encoding="unicode").split(marker)
        dom.xml = None

    def _describe(self, dom: _SimDomain) -> Domain:
        # By text: a deep copy of the tree per call would cost more than the agent's own work.
        self._split(dom)
        interfaces = "".join(i.xml for i in dom.interfaces)
        metadata = "".join(dom.metadata.values())
        head = dom.head.replace("<devices>", f"<metadata>{metadata}</metadata><devices>", 1) if metadata else dom.head
        return Domain(dom.vm_id, dom.name, VM_UP, head + interfaces + dom.tail)

    async def domains(self) -> list[Domain]:
        return [self._describe(d) for d in self._domains.values()]

    async def domain(self, vm_id: str) -> Domain:
        return self._describe(self._get(vm_id))

    async def create(self, xml: str) -> Domain:
        root = etree.fromstring(xml.encode())
        vm_id, name = root.findtext("uuid", ""), root.findtext("name", "")
        if vm_id in self._domains:
            raise HypervisorError(9, f"operation failed: domain '{name}' already exists")
        devices = root.find("devices")
        interfaces = [] if devices is None else list(devices.iterfind("interface"))
        for iface in interfaces:
            devices.remove(iface)  # type: ignore[union-attr]
        dom = _SimDomain(vm_id, name, root)
        for iface in interfaces:
            self._place(dom, iface)  # a refused NIC leaves no domain, as libvirt
        self._domains[vm_id] = dom
        return self._describe(dom)

    async def destroy(self, vm_id: str) -> None:
        self._get(vm_id)
        del self._domains[vm_id]

    @staticmethod
    def _slots(dom: _SimDomain) -> set[int]:
        return {i.slot for i in dom.interfaces if i.slot is not None}

    def _place(self, dom: _SimDomain, iface: etree._Element) -> None:
        source = iface.find("source")
        bridge = source.get("bridge") if source is not None else None
        if bridge and not Path(f"/sys/class/net/{bridge}/bridge").is_dir():
            raise HypervisorError(38, f"Cannot get interface MTU on '{bridge}': No such device")
        used = self._slots(dom)
        address = iface.find("address")
        if address is not None:
            slot = int(address.get("slot", "0"), 16)
            if slot in used:
                raise HypervisorError(27, f"XML error: Attempted double use of PCI Address 0000:00:{slot:02x}.0")
        else:
            free = [s for s in range(_FIRST_SLOT, _LAST_SLOT + 1) if s not in used]
            if not free:
                raise HypervisorError(1, "internal error: No more available PCI slots")
            etree.SubElement(
                iface,
                "address",
                type="pci",
                domain="0x0000",
                bus="0x00",
                slot=f"{free[0]:#04x}",
                function="0x0",
            )
        if iface.find("alias") is None:
            taken = {i.alias for i in dom.interfaces}
            etree.SubElement(iface, "alias", name=next(f"net{n}" for n in itertools.count() if f"net{n}" not in taken))
        if iface.get("type") != "hostdev":
            etree.SubElement(iface, "target", dev=f"vnet{next(self._taps)}")
        dom.interfaces.append(_SimNic.of(iface))

    async def attach(self, vm_id: str, xml: str) -> None:
        self._place(self._get(vm_id), etree.fromstring(xml.encode()))

    async def detach(self, vm_id: str, alias: str) -> None:
        dom = self._get(vm_id)
        for iface in dom.interfaces:
            if iface.alias == alias:
                dom.interfaces.remove(iface)
                if self._listener is not None:
                    asyncio.get_running_loop().call_later(self._removal_delay, self._listener, vm_id, alias, True)
                return
        raise HypervisorError(99, f"device not found: no device found with alias {alias}")

    async def update_device(self, vm_id: str, xml: str) -> None:
        """Only a NIC's link state changes, as libvirt allows live; the NIC is found by alias."""
        dom = self._get(vm_id)
        wanted = etree.fromstring(xml.encode())
        for i, placed in enumerate(dom.interfaces):
            if [placed.alias] == wanted.xpath("alias/@name"):
                iface = etree.fromstring(placed.xml.encode())
                for old in iface.findall("link"):
                    iface.remove(old)
                link = wanted.find("link")
                if link is not None:
                    etree.SubElement(iface, "link", state=link.get("state", "up"))
                dom.interfaces[i] = _SimNic.of(iface)
                return
        raise HypervisorError(99, "device not found: no device matching the update")

    async def set_metadata(self, vm_id: str, uri: str, key: str, xml: str | None) -> None:
        dom = self._get(vm_id)
        if xml is None:
            dom.metadata.pop(uri, None)
        else:
            dom.metadata[uri] = _namespaced(xml, uri, key)

    def taps(self) -> dict[str, str]:
        """Every simulated tap, and the bridge its NIC names ('' for none)."""
        found = {}
        for dom in self._domains.values():
            for iface in dom.interfaces:
                if iface.tap is not None:
                    found[iface.tap] = iface.bridge
        return found


class SimulatedHostNet:
    """Port mirroring's host for the simulated hypervisor: the host's real bridges (read, never
    changed) with the simulated taps as their ports; filters in memory."""

    def __init__(self, hypervisor: SimulatedHypervisor):
        self._hv = hypervisor
        self._ifindex: dict[str, int] = {}  # a stable index per device name, as the kernel's
        self.filters_by_port: dict[str, dict[int, str]] = {}

    async def look(self, bridges: Iterable[str] | None, devices: Iterable[str]) -> HostView:
        taps = self._hv.taps()
        names = list(bridges) if bridges is not None else sorted({b for b in taps.values() if b})
        ports = {
            b: tuple(sorted(t for t, on in taps.items() if on == b))
            for b in names
            if Path(f"/sys/class/net/{b}/bridge").is_dir()
        }
        present = {d for d in devices if d in taps} | {p for found in ports.values() for p in found}
        return HostView(ports, {d: self._ifindex.setdefault(d, 1000 + len(self._ifindex)) for d in present})

    async def filters(self, port: str) -> PortFilters:
        ours = self.filters_by_port.get(port, {})
        return PortFilters(frozenset(ours), tuple(sorted(ours.items())))

    async def add_filter(self, port: str, pref: int, tap: str) -> None:
        if tap not in self._hv.taps():
            raise MirrorError(f"cannot mirror {port} to {tap}: no such device")
        self.filters_by_port.setdefault(port, {})[pref] = tap

    async def delete_filter(self, port: str, pref: int) -> None:
        self.filters_by_port.get(port, {}).pop(pref, None)

    async def drop_ingress_if_empty(self, port: str) -> bool:
        if port in self.filters_by_port and not self.filters_by_port[port]:
            del self.filters_by_port[port]
            return True
        return False
