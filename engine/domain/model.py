"""The engine's objects, as the use cases see them (pure values, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared_schema.nic import PciAddress

# VM statuses (oVirt's, lower case as in API v4).
DOWN, UP, POWERING_UP, POWERING_DOWN = "down", "up", "powering_up", "powering_down"
RUNNING = frozenset({UP, POWERING_UP})  # a plug reaches the host only in these


@dataclass(frozen=True)
class Version:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, other: Version) -> bool:
        return (self.major, self.minor) >= (other.major, other.minor)


@dataclass(frozen=True)
class DataCenter:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    version: Version
    description: str = ""
    data_center_id: str = ""


@dataclass(frozen=True)
class Host:
    id: str
    name: str
    cluster_id: str
    address: str
    port: int
    status: str
    last_seen: datetime | None = None  # when its agent last answered a monitoring poll


@dataclass(frozen=True)
class Network:
    """A VM network of a data center, on a host bridge, attached to some of the data center's clusters."""

    id: str
    name: str
    data_center_id: str
    bridge: str
    cluster_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class VnicProfile:
    id: str
    name: str
    network_id: str
    port_mirroring: bool = False


@dataclass(frozen=True)
class Vm:
    id: str
    name: str
    cluster_id: str
    os_type: str
    status: str
    memory_bytes: int
    host_id: str | None = None
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    custom_properties: dict[str, str] = field(default_factory=dict)
    device_generation: int = 0  # bumped by every change the engine makes to the VM's devices

    @property
    def running(self) -> bool:
        return self.status in RUNNING


@dataclass(frozen=True)
class Nic:
    """A VM's network interface: a vm_interface row with its vm_device (plugged, address)."""

    id: str
    vm_id: str
    name: str
    mac: str
    model: str
    profile_id: str | None
    linked: bool
    plugged: bool
    address: PciAddress | None = None
    alias: str = ""
    # Filled by the repository from the profile and network, for calls to hosts.
    network_name: str = ""
    bridge: str = ""
    port_mirroring: bool = False

    def changed(self, **changes: Any) -> Nic:
        return Nic(**{**self.__dict__, **changes})


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log (oVirt's log types: 1012 plugged, 1013 failed to plug, ...)."""

    id: int
    log_type: int
    severity: str  # normal, warning, error
    message: str
    time: datetime
    user: str
    vm_id: str | None = None
    nic_id: str | None = None
    nic_name: str = ""
    host_id: str | None = None
    host_name: str = ""


@dataclass(frozen=True)
class HostOperation:
    """A call that changes a host, journaled before it goes out (see sql/0008_host_operations.sql)."""

    id: str
    verb: str  # plug, unplug, start, stop
    vm_id: str
    host_id: str
    user: str
    nic_id: str | None = None
    started_at: datetime | None = None
