"""Translate engine NICs and VMs into the agents' wire parameters (``shared_schema``)."""

from __future__ import annotations

from typing import Any

from engine.domain.model import Nic, Vm
from shared_schema.nic import NicSpec
from shared_schema.vm import VmSpec

MIB = 1024 * 1024


def alias_of(nic: Nic) -> str:
    return nic.alias or f"ua-{nic.id}"


def nic_spec(nic: Nic) -> NicSpec:
    return NicSpec(
        device="bridge",
        mac=nic.mac,
        model=nic.model,
        alias=alias_of(nic),
        network=nic.bridge,
        address=nic.address,
        boot_order=nic.boot_order or None,
        promisc=(nic.bridge,) if nic.port_mirroring else (),
        link_active=nic.linked,
    )


def vm_spec(vm: Vm, nics: list[Nic]) -> dict[str, Any]:
    return VmSpec(
        vm_id=vm.id,
        name=vm.name,
        memory_mib=max(16, vm.memory_bytes // MIB),
        kernel=vm.kernel,
        initrd=vm.initrd,
        cmdline=vm.cmdline,
        console_log=vm.custom_properties.get("console_log", ""),
        nics=tuple(nic_spec(n) for n in nics if n.plugged),
    ).to_params()
