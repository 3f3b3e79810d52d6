"""Build a libvirt ``<domain>`` from a :class:`VmSpec` (pure: no libvirt, no I/O).

The spec names images; the caller (``vdsm_agent/images.py``) has resolved them to files of the
agent's images directory (the kernel, initrd and each drive's disk), and chosen the serial
console's file in the agent's log directory.

Guests are ``type='qemu'`` (TCG): KVM guests hang on the hypervisors we test on.  The machine
is VDSM's ``emulatedMachine``: i440fx ``pc`` unless asked, whose root bus accepts hot-plugged PCI
devices in any free slot; or ``q35``, which takes hot-plugged PCIe devices only in free
``pcie-root-port`` controllers, so it gets ``hotplug_ports`` of them beyond what its boot devices
take (:mod:`vdsm_agent.pcie`), no USB controller (it would take a port), and its empty CD-ROM on
SATA (q35 has no IDE).  A VM boots its kernel directly, or from a drive that has a boot order.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from shared_schema.vm import DRIVE_FORMATS, VmSpec, is_q35
from vdsm_agent import pcie
from vdsm_agent.interface_xml import build_interface

# An empty CD-ROM drive carries a boot order, as in every oVirt VM.  Without any per-device
# <boot order>, libvirt adds <os><boot dev='hd'/> and then refuses every hot-plugged NIC that
# has a bootOrder.  Its order is high so that NICs can take any lower number.
CDROM_BOOT_ORDER = 100
# Free PCIe root ports a q35 guest gets for hot plug (oVirt gives 16); the agent's setting.
DEFAULT_HOTPLUG_PORTS = 16


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, tag, attrs)
    if text is not None:
        child.text = text
    return child


def build_domain(
    spec: VmSpec,
    kernel: str = "",
    initrd: str = "",
    console: str = "",
    disks: Sequence[str] = (),
    hotplug_ports: int = DEFAULT_HOTPLUG_PORTS,
) -> etree._Element:
    """``kernel``, ``initrd``: the resolved files of the spec's images; ``console``: the serial log;
    ``disks``: the resolved files of the spec's drives, in order; ``hotplug_ports``: free PCIe root
    ports for hot plug (q35 only)."""
    q35 = is_q35(spec.machine)
    dom = etree.Element("domain", type="qemu")
    _sub(dom, "name", spec.name)
    _sub(dom, "uuid", spec.vm_id)
    if q35:
        _sub(dom, "metadata").append(pcie.metadata(hotplug_ports))
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "vcpu", "1")
    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine=spec.machine)
    if kernel:
        _sub(os_, "kernel", kernel)
        if initrd:
            _sub(os_, "initrd", initrd)
        if spec.cmdline:
            _sub(os_, "cmdline", spec.cmdline)
    features = _sub(dom, "features")
    _sub(features, "acpi")  # the guest learns of unplug requests through ACPI
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(dom, event, "destroy")
    devices = _sub(dom, "devices")
    if q35:
        _sub(devices, "controller", type="pci", model="pcie-root")
        for _ in range(pcie.boot_root_ports(spec) + hotplug_ports):
            _sub(devices, "controller", type="pci", model="pcie-root-port")
        _sub(devices, "controller", type="usb", model="none")
    for i, (drive, path) in enumerate(zip(spec.drives, disks, strict=True)):
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=DRIVE_FORMATS[drive.format])
        _sub(disk, "source", file=path)
        _sub(disk, "target", dev=f"vd{chr(ord('a') + i)}", bus=drive.iface)
        if drive.readonly:
            _sub(disk, "readonly")
        if drive.boot_order:
            _sub(disk, "boot", order=str(drive.boot_order))
    cdrom = _sub(devices, "disk", type="file", device="cdrom")
    _sub(cdrom, "target", dev="sdc" if q35 else "hdc", bus="sata" if q35 else "ide")
    _sub(cdrom, "readonly")
    _sub(cdrom, "boot", order=str(CDROM_BOOT_ORDER))
    for nic in spec.nics:
        devices.append(build_interface(nic))
    if console:
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=console)
        _sub(serial, "target", port="0")
    _sub(devices, "memballoon", model="none")
    return dom


def to_string(element: etree._Element) -> str:
    return etree.tostring(element, pretty_print=True, encoding="unicode")
