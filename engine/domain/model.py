"""The engine's objects, as the use cases see them (pure values, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared_schema.nic import PciAddress
from shared_schema.vm import DEFAULT_MACHINE, is_q35

# VM statuses (oVirt's, lower case as in API v4).
DOWN, UP, POWERING_UP, POWERING_DOWN = "down", "up", "powering_up", "powering_down"
RUNNING = frozenset({UP, POWERING_UP})  # a plug reaches the host only in these

# oVirt's BiosType: a chipset and its firmware.  The hosts run SeaBIOS only (no OVMF firmware).
I440FX_SEA_BIOS, Q35_SEA_BIOS, Q35_OVMF, Q35_SECURE_BOOT = (
    "i440fx_sea_bios",
    "q35_sea_bios",
    "q35_ovmf",
    "q35_secure_boot",
)
CLUSTER_DEFAULT = "cluster_default"  # oVirt's "the cluster's default": i440fx with SeaBIOS here
BIOS_TYPES = (CLUSTER_DEFAULT, I440FX_SEA_BIOS, Q35_SEA_BIOS, Q35_OVMF, Q35_SECURE_BOOT)


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
class QosRate:
    """One direction of a network QoS, in oVirt's units: average and peak in Mbps, burst in MB."""

    average: int
    peak: int
    burst: int


@dataclass(frozen=True)
class NetworkQos:
    """oVirt's network QoS (type network) of a data center: a vNIC profile's traffic shaping."""

    id: str
    name: str
    data_center_id: str
    description: str = ""
    inbound: QosRate | None = None
    outbound: QosRate | None = None


@dataclass(frozen=True)
class VnicProfile:
    id: str
    name: str
    network_id: str
    port_mirroring: bool = False
    description: str = ""
    pass_through: bool = False  # SR-IOV: the NIC would be a virtual function of a host NIC
    qos_id: str | None = None
    data_center_id: str = ""  # its network's (and its QoS's)


@dataclass(frozen=True)
class MacPool:
    """oVirt's MAC pool: the ranges NICs' MACs are handed out of, one after another in this order
    (engine/domain/macpool.py).  This engine has one, oVirt's Default pool; it allows no duplicates."""

    id: str
    name: str
    description: str
    ranges: tuple[tuple[str, str], ...]  # (from, to), both included


@dataclass(frozen=True)
class ProfileUser:
    """A NIC that uses a vNIC profile, with what the profile rules look at."""

    vm_name: str
    vm_status: str
    nic_name: str
    plugged: bool

    @property
    def on_a_host(self) -> bool:
        """Plugged into a VM that is not down: its host applies the profile now."""
        return self.plugged and self.vm_status != DOWN


def bios_for(asked: str | None, custom_machine: str) -> str:
    """The bios type a VM gets: the one asked; for none (or cluster_default), the chipset of its
    custom emulated machine, else i440fx (this engine's clusters have no bios type of their own)."""
    if asked not in (None, "", CLUSTER_DEFAULT):
        return str(asked)
    return Q35_SEA_BIOS if custom_machine and is_q35(custom_machine) else I440FX_SEA_BIOS


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
    bios_type: str = I440FX_SEA_BIOS  # oVirt's bios.type: the chipset (i440fx or q35), SeaBIOS
    custom_emulated_machine: str = ""  # oVirt's: a QEMU machine type that overrides the chipset's

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def machine(self) -> str:
        """The QEMU machine the host starts (VDSM's emulatedMachine)."""
        if self.custom_emulated_machine:
            return self.custom_emulated_machine
        return "q35" if self.bios_type == Q35_SEA_BIOS else DEFAULT_MACHINE

    @property
    def q35(self) -> bool:
        """A PCIe guest: hot-plugged devices go into free PCIe root ports, not PCI slots."""
        return is_q35(self.machine)


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
    pass_through: bool = False
    qos: NetworkQos | None = None

    def changed(self, **changes: Any) -> Nic:
        return Nic(**{**self.__dict__, **changes})


@dataclass(frozen=True)
class Disk:
    """A VM's disk (oVirt's disk attachment and its disk, one object here): an image file of the
    hosts' images directory, named by its file name; VDSM's format raw or cow (qcow2); virtio."""

    id: str
    vm_id: str
    name: str  # the image's file name in the hosts' images directory
    format: str = "raw"
    interface: str = "virtio"
    bootable: bool = False
    read_only: bool = False


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
    verb: str  # plug, unplug, update (a NIC's link), start, stop
    vm_id: str
    host_id: str
    user: str
    nic_id: str | None = None
    started_at: datetime | None = None
