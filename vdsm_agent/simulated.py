"""A simulated hypervisor, for scale benchmarks only: never the proof that a feature works.

Devices live in memory.  Slots, aliases, taps and errors follow what libvirt does on an
i440fx ``pc`` machine: the first free slot from 0x02 up to 0x1f, ``vnetN`` taps, code 27 for
a slot used twice, code 1 when slots run out, code 38 for a bridge the host lacks, code 99
for a detach of an absent device, DEVICE_REMOVED shortly after a detach.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from vdsm_agent.hypervisor import DeviceListener, Domain, HypervisorError, NoSuchDomain

_FIRST_SLOT, _LAST_SLOT = 0x02, 0x1F


@dataclass
class _SimDomain:
    vm_id: str
    name: str
    xml: etree._Element
    interfaces: list[etree._Element] = field(default_factory=list)


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

    def _describe(self, dom: _SimDomain) -> Domain:
        live = etree.fromstring(etree.tostring(dom.xml))
        devices = live.find("devices")
        if devices is None:
            devices = etree.SubElement(live, "devices")
        devices.extend(etree.fromstring(etree.tostring(i)) for i in dom.interfaces)
        return Domain(dom.vm_id, dom.name, "Up", etree.tostring(live, encoding="unicode"))

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
            self._place(dom, iface)  # a refused NIC leaves no domain behind, as in libvirt
        self._domains[vm_id] = dom
        return self._describe(dom)

    async def destroy(self, vm_id: str) -> None:
        self._get(vm_id)
        del self._domains[vm_id]

    @staticmethod
    def _slots(dom: _SimDomain) -> set[int]:
        slots = (i.find("address") for i in dom.interfaces)
        return {int(a.get("slot", "0"), 16) for a in slots if a is not None}

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
            taken = {a.get("name") for i in dom.interfaces if (a := i.find("alias")) is not None}
            etree.SubElement(iface, "alias", name=next(f"net{n}" for n in itertools.count() if f"net{n}" not in taken))
        if iface.get("type") != "hostdev":
            etree.SubElement(iface, "target", dev=f"vnet{next(self._taps)}")
        dom.interfaces.append(iface)

    async def attach(self, vm_id: str, xml: str) -> None:
        self._place(self._get(vm_id), etree.fromstring(xml.encode()))

    async def detach(self, vm_id: str, alias: str) -> None:
        dom = self._get(vm_id)
        for iface in dom.interfaces:
            if iface.xpath("alias/@name") == [alias]:
                dom.interfaces.remove(iface)
                if self._listener is not None:
                    asyncio.get_running_loop().call_later(self._removal_delay, self._listener, vm_id, alias, True)
                return
        raise HypervisorError(99, f"device not found: no device found with alias {alias}")
