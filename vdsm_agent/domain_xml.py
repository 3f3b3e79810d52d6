"""Build a libvirt ``<domain>`` from a :class:`VmSpec` (pure: no libvirt, no I/O).

The spec names images; the caller (``vdsm_agent/images.py``) has resolved them to files of the
agent's images directory, and chosen the serial console's file in the agent's log directory.

Guests are ``type='qemu'`` (TCG): KVM guests hang on the hypervisors we test on.  The machine
is i440fx ``pc``, whose root bus accepts hot-plugged PCI devices in any free slot.
"""

from __future__ import annotations

from lxml import etree

from shared_schema.vm import VmSpec
from vdsm_agent.interface_xml import build_interface

# An empty CD-ROM drive carries a boot order, as in every oVirt VM.  Without any per-device
# <boot order>, libvirt adds <os><boot dev='hd'/> and then refuses every hot-plugged NIC that
# has a bootOrder.  Its order is high so that NICs can take any lower number.
CDROM_BOOT_ORDER = 100


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, tag, attrs)
    if text is not None:
        child.text = text
    return child


def build_domain(spec: VmSpec, kernel: str = "", initrd: str = "", console: str = "") -> etree._Element:
    """``kernel``, ``initrd``: the resolved files of the spec's images; ``console``: the serial log."""
    dom = etree.Element("domain", type="qemu")
    _sub(dom, "name", spec.name)
    _sub(dom, "uuid", spec.vm_id)
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "vcpu", "1")
    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch="x86_64", machine="pc")
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
    cdrom = _sub(devices, "disk", type="file", device="cdrom")
    _sub(cdrom, "target", dev="hdc", bus="ide")
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
