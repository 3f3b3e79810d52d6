"""PCIe root ports for hot plug on q35 guests (pure: no libvirt, no I/O).

On i440fx (``pc``) a hot-plugged device takes any free slot of the root bus.  On q35 a PCIe
device is hot-plugged into a ``pcie-root-port``, and libvirt cannot add a controller to a running
guest: the ports must be there from the start.  So VM.create gives a q35 guest as many free root
ports for hot plug as the ``pcie_hotplug_ports`` setting says (16, as oVirt), beyond those its boot
devices take (libvirt puts each boot device that has no address on the first free port, and adds
ports only when none is free), and records that number in the domain's metadata.  A hot plug of a
NIC without an address takes a free port (libvirt picks it); when none is left, hotplugNic says so
in words instead of libvirt's "No more available PCI slots".  An unplug frees the port.
"""

from __future__ import annotations

from lxml import etree

from shared_schema.vm import VmSpec, is_q35

PCIE_NS = "urn:x-hotplug-nic:pcie:1"
PCIE_PREFIX = "hppcie"
# NIC models that are PCIe devices: each takes a root port of its own.  The others (e1000,
# rtl8139) are conventional PCI: libvirt puts them behind a pcie-to-pci-bridge, and adds a root
# port for that bridge itself even when free ones are declared (libvirt 9.0, measured here).
PCIE_NIC_MODELS = frozenset({"virtio", "e1000e"})


def boot_root_ports(spec: VmSpec) -> int:
    """How many of the declared root ports the VM's boot devices (virtio disks, PCIe NICs) take on q35."""
    ports = len(spec.drives)  # virtio disks are PCIe devices
    for nic in spec.nics:
        if nic.address is not None:
            ports += nic.address.bus != 0  # on a port (bus N) or built into the root complex (bus 0)
        elif nic.device == "sriov" or nic.model in PCIE_NIC_MODELS:
            ports += 1
    return ports


def metadata(hotplug_ports: int) -> etree._Element:
    """The domain's record of how many root ports it was given for hot plug."""
    return etree.Element(f"{{{PCIE_NS}}}pcie", {"hotplugPorts": str(hotplug_ports)}, nsmap={PCIE_PREFIX: PCIE_NS})


def _root(domain_xml: str | bytes) -> etree._Element:
    return etree.fromstring(domain_xml.encode() if isinstance(domain_xml, str) else domain_xml)


def free_root_ports(domain_xml: str | bytes) -> tuple[int, int]:
    """(free, all) hot-pluggable root ports of a running domain: a port is taken when a device
    (or a bridge) sits on its bus."""
    return _free_root_ports(_root(domain_xml))


def _free_root_ports(root: etree._Element) -> tuple[int, int]:
    ports = set()
    for controller in root.iterfind("devices/controller[@type='pci']"):
        target = controller.find("target")
        if controller.get("model") == "pcie-root-port" and (target is None or target.get("hotplug") != "off"):
            ports.add(int(controller.get("index", "0")))
    # Only a device's own <address>: a hostdev's <source><address> is the host's side.
    taken = {int(a.get("bus", "0"), 16) for a in root.iterfind("devices/*/address[@type='pci']")}
    return len(ports - taken), len(ports)


def started_with(domain_xml: str | bytes) -> int | None:
    """The number of hot-plug ports VM.create gave the domain (None: not created by an agent)."""
    return _started_with(_root(domain_xml))


def _started_with(root: etree._Element) -> int | None:
    element = root.find(f"metadata/{{{PCIE_NS}}}pcie")
    value = element.get("hotplugPorts", "") if element is not None else ""
    return int(value) if value.isdigit() else None


def no_free_port(domain_xml: str | bytes) -> str | None:
    """Why a device without an address cannot be hot-plugged (no root port left on a q35 guest),
    or None when it can go in."""
    if "q35" not in (domain_xml if isinstance(domain_xml, str) else domain_xml.decode(errors="replace")):
        return None  # not q35 (most guests): no second parse of the XML on every plug
    root = _root(domain_xml)
    os_type = root.find("os/type")
    if os_type is None or not is_q35(os_type.get("machine", "")):
        return None
    free, ports = _free_root_ports(root)
    if free:
        return None
    started = _started_with(root)
    if started is None:
        return f"no free PCIe root port left for hot plug: all {ports} root ports of the VM are taken"
    return (
        f"no free PCIe root port left for hot plug: the VM was started with {started} "
        "(pcie_hotplug_ports); unplug a device to free one"
    )
