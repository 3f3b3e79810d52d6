"""What the agent answers, typed on both sides: the agent builds these, the engine parses them.

    VM.hotplugNic    -> HotplugAnswer   {"vmId", "nic": PlacedNic}
    VM.hotunplugNic  -> HotunplugAnswer {"vmId", "nic": {"alias", "macAddr"}}
    VM.updateDevice  -> UpdateDeviceAnswer {"vmId", "nic": PlacedNic}: the NIC with its link state now
    VM.create        -> VmStats         {"vmId", "vmName", "status", "hash", "nics": [PlacedNic]}
    Host.getAllVmStats -> [VmStatus]    {"vmId", "vmName", "status", "hash"}
    Host.getVMFullList -> [VmStats]

``status`` is VDSM's word for the domain's state (``VM_UP``, ``VM_PAUSED``, ...); ``hash`` changes
whenever the VM's devices do, so a watcher fetches device lists only for VMs whose hash moved.

A refusal is a JSON-RPC error (codes in :mod:`shared_schema.errors`) whose ``data`` may carry
libvirt's own error code (``LIBVIRT_CODE``) and, for code 50, why the unplug failed
(``REASON``: an :class:`UnplugReason`).  ``from_params`` validates what it reads and raises
:class:`~shared_schema.errors.ParamError` on a malformed answer, so neither side ever reads raw
dict keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared_schema.errors import ParamError
from shared_schema.nic import PciAddress, parse_mac, parse_vm_id

# Keys of a JSON-RPC error's data.
LIBVIRT_CODE = "libvirtCode"
REASON = "reason"


class UnplugReason(StrEnum):
    """Why VM.hotunplugNic failed (code 50), in the error's data under ``REASON``."""

    NO_SUCH_DEVICE = "noSuchDevice"  # the VM has no such NIC: for a caller, already unplugged
    TIMEOUT = "timeout"  # the guest did not release it in time; it may still do so later
    REFUSED = "refused"  # the guest refused (DEVICE_REMOVAL_FAILED)


def failure_data(*, reason: UnplugReason | None = None, libvirt_code: int | None = None) -> dict[str, object]:
    data: dict[str, object] = {}
    if reason is not None:
        data[REASON] = reason.value
    if libvirt_code is not None:
        data[LIBVIRT_CODE] = libvirt_code
    return data


def unplug_reason(data: Mapping[str, Any]) -> UnplugReason | None:
    try:
        return UnplugReason(str(data.get(REASON)))
    except ValueError:
        return None


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ParamError.invalid(name, f"expected an object, got {value!r}")
    return value


def _str(value: Mapping[str, Any], key: str, name: str) -> str:
    got = value.get(key, "")
    if not isinstance(got, str):
        raise ParamError.invalid(f"{name}.{key}", f"expected a string, got {got!r}")
    return got


@dataclass(frozen=True)
class PlacedNic:
    """A NIC as the host has it (VDSM's device dict): where libvirt placed it, and its tap."""

    alias: str  # libvirt's alias; '' only in the stats of a VM that is not running
    mac: str
    device: str = "bridge"  # bridge, bridgeless, vnlink, sriov (or libvirt's type for others)
    model: str = ""
    network: str = ""
    address: PciAddress | None = None
    tap: str = ""
    link_active: bool = True
    boot_order: int | None = None

    def to_params(self) -> dict[str, Any]:
        return {
            "type": "interface",
            "device": self.device,
            "alias": self.alias,
            "macAddr": self.mac,
            "nicModel": self.model,
            "network": self.network,
            "address": self.address.to_params() if self.address else None,
            "name": self.tap,
            "linkActive": self.link_active,
            "bootOrder": self.boot_order,
        }

    @classmethod
    def from_params(cls, value: Any, name: str = "nic") -> PlacedNic:
        nic = _mapping(value, name)
        alias = _str(nic, "alias", name)  # '' for a VM libvirt has defined but not started
        boot = nic.get("bootOrder")
        if boot is not None and (isinstance(boot, bool) or not isinstance(boot, int)):
            raise ParamError.invalid(f"{name}.bootOrder", f"expected a number, got {boot!r}")
        return cls(
            alias=alias,
            mac=parse_mac(nic.get("macAddr"), f"{name}.macAddr"),
            device=_str(nic, "device", name) or "bridge",
            model=_str(nic, "nicModel", name),
            network=_str(nic, "network", name),
            address=PciAddress.parse(nic["address"], f"{name}.address") if nic.get("address") else None,
            tap=_str(nic, "name", name),
            link_active=nic.get("linkActive", True) is not False,
            boot_order=boot,
        )


@dataclass(frozen=True)
class HotplugAnswer:
    vm_id: str
    nic: PlacedNic

    def to_params(self) -> dict[str, Any]:
        return {"vmId": self.vm_id, "nic": self.nic.to_params()}

    @classmethod
    def from_params(cls, value: Any) -> HotplugAnswer:
        answer = _mapping(value, "result")
        nic = PlacedNic.from_params(answer.get("nic"), "result.nic")
        if not nic.alias:  # a plugged NIC has one: later calls find the device by it
            raise ParamError.missing("result.nic.alias")
        return cls(parse_vm_id(answer.get("vmId")), nic)


# VM.updateDevice answers as VM.hotplugNic does: the NIC as libvirt has it now (its link state).
UpdateDeviceAnswer = HotplugAnswer


@dataclass(frozen=True)
class HotunplugAnswer:
    vm_id: str
    alias: str
    mac: str

    def to_params(self) -> dict[str, Any]:
        return {"vmId": self.vm_id, "nic": {"alias": self.alias, "macAddr": self.mac}}

    @classmethod
    def from_params(cls, value: Any) -> HotunplugAnswer:
        answer = _mapping(value, "result")
        nic = _mapping(answer.get("nic"), "result.nic")
        return cls(
            parse_vm_id(answer.get("vmId")),
            _str(nic, "alias", "result.nic"),
            parse_mac(nic.get("macAddr"), "result.nic.macAddr"),
        )


def device_hash(nics: Iterable[PlacedNic]) -> str:
    """A short digest of a VM's devices as placed: equal exactly when the devices are."""
    canonical = json.dumps(sorted((n.to_params() for n in nics), key=lambda p: (p["alias"], p["macAddr"])),
                           sort_keys=True)  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# VM statuses as VDSM words them (libvirt's domain states).
VM_UP, VM_PAUSED, VM_POWERING_DOWN, VM_DOWN, VM_UNKNOWN = "Up", "Paused", "Powering down", "Down", "Unknown"


@dataclass(frozen=True)
class VmStatus:
    """One entry of Host.getAllVmStats: the VM's state and its device hash, no devices."""

    vm_id: str
    name: str
    status: str
    device_hash: str = ""

    def to_params(self) -> dict[str, Any]:
        return {"vmId": self.vm_id, "vmName": self.name, "status": self.status, "hash": self.device_hash}

    @classmethod
    def from_params(cls, value: Any) -> VmStatus:
        stats = _mapping(value, "result")
        return cls(
            vm_id=parse_vm_id(stats.get("vmId")),
            name=_str(stats, "vmName", "result"),
            status=_str(stats, "status", "result"),
            device_hash=_str(stats, "hash", "result"),
        )


def list_of(parse: Any, value: Any) -> list[Any]:
    """A list answer (Host.getAllVmStats, Host.getVMFullList), each entry read by ``parse``."""
    if not isinstance(value, list):
        raise ParamError.invalid("result", f"expected a list, got {value!r}")
    return [parse(entry) for entry in value]


@dataclass(frozen=True)
class VmStats:
    """A VM as its host runs it (VM.create's answer, one entry of Host.getVMFullList)."""

    vm_id: str
    name: str
    status: str  # libvirt's state in VDSM's words: VM_UP, VM_PAUSED, ...
    nics: tuple[PlacedNic, ...] = ()
    device_hash: str = ""

    def to_params(self) -> dict[str, Any]:
        return {
            "vmId": self.vm_id,
            "vmName": self.name,
            "status": self.status,
            "hash": self.device_hash,
            "nics": [n.to_params() for n in self.nics],
        }

    @classmethod
    def from_params(cls, value: Any) -> VmStats:
        stats = _mapping(value, "result")
        nics = stats.get("nics", [])
        if not isinstance(nics, list):
            raise ParamError.invalid("result.nics", f"expected a list, got {nics!r}")
        return cls(
            vm_id=parse_vm_id(stats.get("vmId")),
            name=_str(stats, "vmName", "result"),
            status=_str(stats, "status", "result"),
            nics=tuple(PlacedNic.from_params(n, f"result.nics[{i}]") for i, n in enumerate(nics)),
            device_hash=_str(stats, "hash", "result"),
        )
