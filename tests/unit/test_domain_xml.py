"""The domain builder makes guests that can take hot-plugged NICs on these hypervisors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from lxml import etree

from shared_schema.errors import ParamError
from shared_schema.nic import NicSpec
from shared_schema.vm import DriveSpec, VmSpec
from vdsm_agent.domain_xml import build_domain

VM_ID = str(uuid.uuid4())


def test_tiny_guest_domain() -> None:
    dom = build_domain(VmSpec(VM_ID, "g1", 128, "vmlinuz", "initrd.img", "console=ttyS0"), "/img/vmlinuz",
                       "/img/initrd.img", "/log/c.log")  # fmt: skip
    assert dom.get("type") == "qemu"  # TCG: KVM guests hang here
    assert dom.findtext("uuid") == VM_ID
    assert dom.find("memory").text == "128" and dom.find("memory").get("unit") == "MiB"
    assert dom.find("os/type").get("machine") == "pc"
    assert [dom.findtext(f"os/{t}") for t in ("kernel", "initrd", "cmdline")] == [
        "/img/vmlinuz",
        "/img/initrd.img",
        "console=ttyS0",
    ]
    assert dom.find("features/acpi") is not None  # unplug requests reach the guest through ACPI
    assert dom.find("devices/serial/source").get("path") == "/log/c.log"


def test_spec_rejects_nonsense() -> None:
    with pytest.raises(ParamError, match="vmId"):
        VmSpec("not-a-uuid", "g")
    with pytest.raises(ParamError, match="vmName"):
        VmSpec(VM_ID, "")
    with pytest.raises(ParamError, match="memSize"):
        VmSpec(VM_ID, "g", memory_mib=1)
    for path in ("/boot/vmlinuz", "../vmlinuz", "..", "a\x00b"):
        with pytest.raises(ParamError, match="kernel: expected a file name of the host's images directory"):
            VmSpec(VM_ID, "g", kernel=path)


# --- Golden domains: machine types, drives ------------------------------------------------------

_PARSER = etree.XMLParser(remove_blank_text=True)
GOLDEN_ID = "0a1b2c3d-0000-4000-8000-00000000000a"


def canonical(xml: str | etree._Element) -> str:
    """Canonical XML: attribute order, quoting and blank text between elements do not matter."""
    element = etree.fromstring(xml.strip(), _PARSER) if isinstance(xml, str) else xml
    return etree.tostring(etree.fromstring(etree.tostring(element), _PARSER), method="c14n").decode()


def bridge_nic(n: int, model: str = "pv", **extra: Any) -> NicSpec:
    return NicSpec.from_params({"device": "bridge", "network": "br0", "macAddr": f"52:54:00:00:00:{n:02x}",
                                "nicModel": model, "id": f"n{n}", **extra})  # fmt: skip


HEAD = f"""
  <name>g</name>
  <uuid>{GOLDEN_ID}</uuid>"""
TAIL = """
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>"""
MEMORY = """
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>"""


def test_golden_i440fx_guest_by_direct_kernel_boot() -> None:
    """The default: 'pc', the CD-ROM on IDE, no controllers declared (the root bus takes hot plugs)."""
    spec = VmSpec(GOLDEN_ID, "g", 128, "vmlinuz", "initrd.img", "console=ttyS0", nics=(bridge_nic(1),))
    built = build_domain(spec, "/img/vmlinuz", "/img/initrd.img", "/log/c.log")
    assert canonical(built) == canonical(f"""
        <domain type='qemu'>{HEAD}{MEMORY}
          <os>
            <type arch='x86_64' machine='pc'>hvm</type>
            <kernel>/img/vmlinuz</kernel>
            <initrd>/img/initrd.img</initrd>
            <cmdline>console=ttyS0</cmdline>
          </os>{TAIL}
          <devices>
            <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/><boot order='100'/></disk>
            <interface type='bridge'>
              <mac address='52:54:00:00:00:01'/><source bridge='br0'/><model type='virtio'/><alias name='ua-n1'/>
            </interface>
            <serial type='file'><source path='/log/c.log'/><target port='0'/></serial>
            <memballoon model='none'/>
          </devices>
        </domain>""")  # fmt: skip


def test_golden_q35_guest_booting_a_qcow2_disk() -> None:
    """q35: the hot-plug ports (2) plus one per PCIe boot device (2 virtio disks, 1 virtio NIC; the
    e1000 goes behind the PCI bridge libvirt adds a port for), no USB, the CD-ROM on SATA, the
    number of hot-plug ports in the metadata; disks with their format, boot order, read-only."""
    spec = VmSpec(
        GOLDEN_ID, "g", 128, nics=(bridge_nic(1, bootOrder=2), bridge_nic(2, "e1000")), machine="q35",
        drives=(DriveSpec("root.qcow2", "cow", boot_order=1), DriveSpec("data.img", readonly=True)),
    )  # fmt: skip
    built = build_domain(spec, console="/log/c.log", disks=["/img/root.qcow2", "/img/data.img"], hotplug_ports=2)
    ports = "<controller type='pci' model='pcie-root-port'/>" * 5
    assert canonical(built) == canonical(f"""
        <domain type='qemu'>{HEAD}
          <metadata><hppcie:pcie xmlns:hppcie='urn:x-hotplug-nic:pcie:1' hotplugPorts='2'/></metadata>{MEMORY}
          <os><type arch='x86_64' machine='q35'>hvm</type></os>{TAIL}
          <devices>
            <controller type='pci' model='pcie-root'/>
            {ports}
            <controller type='usb' model='none'/>
            <disk type='file' device='disk'>
              <driver name='qemu' type='qcow2'/><source file='/img/root.qcow2'/><target dev='vda' bus='virtio'/>
              <boot order='1'/>
            </disk>
            <disk type='file' device='disk'>
              <driver name='qemu' type='raw'/><source file='/img/data.img'/><target dev='vdb' bus='virtio'/>
              <readonly/>
            </disk>
            <disk type='file' device='cdrom'><target dev='sdc' bus='sata'/><readonly/><boot order='100'/></disk>
            <interface type='bridge'>
              <mac address='52:54:00:00:00:01'/><source bridge='br0'/><model type='virtio'/><boot order='2'/>
              <alias name='ua-n1'/>
            </interface>
            <interface type='bridge'>
              <mac address='52:54:00:00:00:02'/><source bridge='br0'/><model type='e1000'/><alias name='ua-n2'/>
            </interface>
            <serial type='file'><source path='/log/c.log'/><target port='0'/></serial>
            <memballoon model='none'/>
          </devices>
        </domain>""")  # fmt: skip


@pytest.mark.parametrize(
    ("nics", "drives", "taken"),
    [
        ((), (), 0),
        ((bridge_nic(1), bridge_nic(2, "e1000e")), (), 2),  # PCIe NICs: a port each
        ((bridge_nic(1, "e1000"), bridge_nic(2, "rtl8139")), (), 0),  # behind libvirt's own bridge port
        ((bridge_nic(1, address="0000:00:05.0"),), (), 0),  # built into the root complex
        ((bridge_nic(1, address="0000:03:00.0"),), (), 1),  # on root port 3
        ((), (DriveSpec("a.img"), DriveSpec("b.img")), 2),
    ],
)
def test_q35_declares_the_hot_plug_ports_beyond_what_boot_devices_take(
    nics: tuple[NicSpec, ...], drives: tuple[DriveSpec, ...], taken: int
) -> None:
    spec = VmSpec(VM_ID, "g", machine="q35", nics=nics, drives=drives)
    built = build_domain(spec, disks=[f"/img/{d.image}" for d in drives], hotplug_ports=3)
    assert len(built.findall("devices/controller[@model='pcie-root-port']")) == taken + 3


def test_a_versioned_machine_is_passed_through_and_pc_has_no_pcie_ports() -> None:
    for machine, q35 in (("pc-q35-7.2", True), ("pc-i440fx-7.2", False)):
        built = build_domain(VmSpec(VM_ID, "g", machine=machine), hotplug_ports=4)
        assert built.find("os/type").get("machine") == machine
        assert len(built.findall("devices/controller[@model='pcie-root-port']")) == (4 if q35 else 0)
        assert (built.find("metadata") is not None) == q35
