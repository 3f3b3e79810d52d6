"""The domain builder makes guests that can take hot-plugged NICs on these hypervisors."""

from __future__ import annotations

import uuid

import pytest

from shared_schema.errors import ParamError
from shared_schema.vm import VmSpec
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
