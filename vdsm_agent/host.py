"""Host verbs: Host.ping and Host.getCapabilities (what this hypervisor can offer NICs)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from shared_schema.nic import NIC_MODELS
from vdsm_agent.hypervisor import Hypervisor

_SYS_NET = Path("/sys/class/net")
# The libvirt models behind the seed's names ('pv' is virtio), each once, in NIC_MODELS' order.
_LIBVIRT_MODELS = list(dict.fromkeys(NIC_MODELS.values()))


def _kind(dev: Path) -> str:
    if (dev / "bridge").is_dir():
        return "bridge"
    if (dev / "tun_flags").exists():
        return "tap"
    if (dev / "brport").exists():
        return "bridge-port"
    return "device"


def host_interfaces() -> dict[str, list[str]]:
    """Bridges, and devices a macvtap (vnlink) NIC can sit on: not lo, taps or bridge ports."""
    found: dict[str, list[str]] = {"bridge": [], "device": []}
    for dev in sorted(_SYS_NET.iterdir()):
        kind = _kind(dev)
        if dev.name != "lo" and kind in found:
            found[kind].append(dev.name)
    return found


async def capabilities(hypervisor: Hypervisor) -> dict[str, Any]:
    versions = await hypervisor.versions()
    interfaces = await asyncio.to_thread(host_interfaces)
    return {
        "libvirtVersion": versions["libvirt"],
        "qemuVersion": versions["qemu"],
        "bridges": interfaces["bridge"],
        "networks": await hypervisor.network_names(),
        "hostDevices": interfaces["device"],
        "nicModels": list(_LIBVIRT_MODELS),
        "deviceTypes": ["bridge", "bridgeless", "vnlink", "sriov"],
    }
