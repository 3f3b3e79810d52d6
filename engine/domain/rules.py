"""The seed's canDo rules: one refusal function per action, and nowhere else.

``refuse_<action>(...)`` returns ``None`` when the action is allowed now, else the
:class:`EngineError` that says why.  A service calls ``check(refuse_<action>(...))`` before it
changes anything; the API's ``disabled_actions`` (what the admin page enables) calls the same
functions through :func:`nic_action_refusals` and :func:`vm_action_refusals`.  So a button is
enabled exactly when the engine would do what it asks.

Pure functions over domain values; the facts they need beyond a VM and a NIC come in a
:class:`Site` that the caller reads from the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.limits import (
    QOS_AVERAGE_MAX,
    QOS_BURST_MAX,
    QOS_PEAK_MAX,
    refuse_memory,
    refuse_name,
    refuse_range,
    shown,
)
from engine.domain.model import (
    BIOS_TYPES,
    DOWN,
    I440FX_SEA_BIOS,
    POWERING_DOWN,
    Q35_OVMF,
    Q35_SEA_BIOS,
    Q35_SECURE_BOOT,
    RUNNING,
    Cluster,
    Disk,
    Host,
    Network,
    NetworkQos,
    Nic,
    ProfileUser,
    Version,
    Vm,
    VnicProfile,
)
from engine.domain.os_types import OS_TYPES
from shared_schema.errors import ParamError
from shared_schema.vm import (
    DRIVE_FORMATS,
    DRIVE_IFACES,
    IMAGE_NAME_RULE,
    MACHINE_RULE,
    MAX_DRIVES,
    check_kernel_args,
    check_vm_name,
    is_q35,
    parse_image_name,
    parse_machine,
)

HOTPLUG_MIN_VERSION = Version(3, 1)
# x86 i440fx guests: PCI slots left for devices after the chipset's own (oVirt's limit).
PCI_DEVICE_BUDGET = 26
# VM statuses in which a NIC may be plugged or unplugged (oVirt's ActivateDeactivateVmNic).
PLUG_STATUSES = frozenset({DOWN, POWERING_DOWN, *RUNNING})

Refusal = EngineError | None


@dataclass(frozen=True)
class Site:
    """Where a VM's NICs live: its cluster, the host it runs on, and how full its PCI bus is."""

    cluster: Cluster
    host: Host | None  # the VM's host while it runs, else None
    plugged_count: int  # devices of the VM that are plugged


def check(refusal: Refusal) -> None:
    """Raise the refusal, if there is one."""
    if refusal is not None:
        raise refusal


def _status_word(vm: Vm) -> str:
    return vm.status.replace("_", " ")


# -- the pieces the action rules are made of ------------------------------------------------


def _vm_status_allows_plug(vm: Vm) -> Refusal:
    if vm.status not in PLUG_STATUSES:
        return EngineError(
            errors.VM_STATUS_ILLEGAL,
            f"VM {vm.name} is {_status_word(vm)}; NICs can change only while it is up or down",
        )
    return None


def _hotplug_supported(vm: Vm, cluster: Cluster) -> Refusal:
    """Hot plug/unplug on a running VM needs a 3.1+ cluster and an OS from the seed's list."""
    if not cluster.version.at_least(HOTPLUG_MIN_VERSION):
        return EngineError(
            errors.HOTPLUG_CLUSTER_VERSION,
            f"hot plug of NICs needs cluster compatibility version {HOTPLUG_MIN_VERSION} or later; "
            f"cluster {cluster.name} is at {cluster.version}. Stop the VM to change its NICs",
        )
    os = OS_TYPES.get(vm.os_type)
    if os is None or not os.nic_hotplug:
        supported = ", ".join(o.name for o in OS_TYPES.values() if o.nic_hotplug)
        return EngineError(
            errors.HOTPLUG_OS,
            f"the guest OS {vm.os_type} of VM {vm.name} does not support NIC hot plug "
            f"(supported: {supported}). Stop the VM to change its NICs",
        )
    return None


def _running_host(vm: Vm, site: Site) -> Refusal:
    if site.host is None:
        return EngineError(errors.HOST_NOT_FOUND, f"VM {vm.name} is {_status_word(vm)} but runs on no known host")
    return None


def _first(*refusals: Refusal) -> Refusal:
    return next((r for r in refusals if r is not None), None)


# -- NIC actions ----------------------------------------------------------------------------


def refuse_plug(vm: Vm, nic: Nic, site: Site) -> Refusal:
    """Plug (activate) an unplugged NIC: on a running VM this reaches the host."""
    refusal = _vm_status_allows_plug(vm)
    # i440fx: PCI slots, oVirt's budget.  q35: each hot plug takes a free PCIe root port, of which
    # the host gave the VM its pcie_hotplug_ports at start; the host says when none is left (49).
    if refusal is None and not vm.q35 and site.plugged_count + 1 > PCI_DEVICE_BUDGET:
        refusal = EngineError(
            errors.PCI_BUDGET,
            f"VM {vm.name} already has {site.plugged_count} plugged devices; the limit is {PCI_DEVICE_BUDGET}",
        )
    refusal = refusal or refuse_pass_through(nic.name, nic.pass_through)
    if refusal is not None or not vm.running:
        return refusal
    refusal = _first(_hotplug_supported(vm, site.cluster), _running_host(vm, site))
    if refusal is None and not nic.bridge:
        refusal = EngineError(
            errors.INVALID, f"NIC {nic.name} has no vNIC profile; choose a network before activating it"
        )
    if refusal is None and site.host is not None and site.host.cluster_id != site.cluster.id:
        # Every network of a cluster is carried by every host of that cluster (oVirt's required networks).
        refusal = EngineError(
            errors.NETWORK_NOT_IN_CLUSTER,
            f"host {site.host.name} is not in cluster {site.cluster.name}, which network {nic.network_name} belongs to",
        )
    return refusal


def refuse_unplug(vm: Vm, nic: Nic, site: Site) -> Refusal:
    """Unplug (deactivate) a plugged NIC: on a running VM this reaches the host."""
    refusal = _vm_status_allows_plug(vm)
    if refusal is not None or not vm.running:
        return refusal
    return _first(_hotplug_supported(vm, site.cluster), _running_host(vm, site))


def _plugged_into(nic: Nic, vm: Vm) -> str:
    if vm.running:
        return f"NIC {nic.name} is plugged into running VM {vm.name}"
    return f"NIC {nic.name} is plugged into VM {vm.name}, which is {_status_word(vm)}"


# What a NIC update may change, by the API's field names.  Only the link state changes on a NIC
# plugged into a running VM (VDSM's VM.updateDevice, which oVirt added after the seed).
NIC_FIELDS = frozenset({"name", "interface", "mac", "vnic_profile", "linked"})
LIVE_NIC_FIELDS = frozenset({"linked"})


def refuse_update(vm: Vm, nic: Nic, site: Site, changed: frozenset[str] = NIC_FIELDS) -> Refusal:
    """The seed: a NIC changes only while the VM is down or the NIC is not plugged.  oVirt later
    let one thing change on a NIC plugged into a running VM, its link state (``linked``), which
    reaches the host at once (VM.updateDevice): under the rules of a hot plug.  ``changed``: the
    fields the update changes (:data:`NIC_FIELDS`; all of them: "may it be edited at all")."""
    if vm.status == DOWN or not nic.plugged:
        return None
    if not vm.running:
        return EngineError(
            errors.UPDATE_PLUGGED_RUNNING, f"{_plugged_into(nic, vm)}; deactivate it (or stop the VM) before editing it"
        )
    if not changed <= LIVE_NIC_FIELDS:
        asked = "anything else" if changed == NIC_FIELDS else "its " + ", ".join(sorted(changed - LIVE_NIC_FIELDS))
        return EngineError(
            errors.UPDATE_PLUGGED_RUNNING,
            f"{_plugged_into(nic, vm)}; only its link state (linked) can change while it is: "
            f"deactivate it (or stop the VM) before editing {asked}",
        )
    return _first(_hotplug_supported(vm, site.cluster), _running_host(vm, site))


def refuse_pass_through(nic_name: str, pass_through: bool) -> Refusal:
    """What the engine does with an SR-IOV (pass-through) profile: keeps it, and plugs no NIC of it.
    Its NIC would be a virtual function of a host NIC, and this engine manages no host NICs and
    their virtual functions (oVirt's host network setup), nor do its hosts offer any."""
    if pass_through:
        return EngineError(
            errors.PASS_THROUGH_UNSUPPORTED,
            f"NIC {nic_name} is on a pass-through (SR-IOV) vNIC profile: it would need a virtual function of a "
            "host NIC, which this engine does not manage; choose a profile without pass-through to plug it",
        )
    return None


def refuse_remove(vm: Vm, nic: Nic) -> Refusal:
    """The seed: a NIC is removed only while the VM is down or the NIC is deactivated."""
    if vm.status != DOWN and nic.plugged:
        return EngineError(
            errors.REMOVE_PLUGGED_RUNNING,
            f"{_plugged_into(nic, vm)}; deactivate it (or stop the VM) before removing it",
        )
    return None


def refuse_nic_fields(vm: Vm, nics: list[Nic], nic_id: str, name: str, model: str) -> Refusal:
    """A NIC's name is unique within its VM; its model must suit the VM's OS."""
    bad_name = refuse_name("NIC", name)
    if bad_name is not None:
        return bad_name
    if any(n.name == name and n.id != nic_id for n in nics):
        return EngineError(errors.NIC_NAME_IN_USE, f"VM {vm.name} already has a NIC named {name}")
    os = OS_TYPES.get(vm.os_type)
    allowed = os.nic_models if os else frozenset()
    if model not in allowed:
        return EngineError(
            errors.INVALID_MODEL,
            f"NIC model {shown(model)} is not valid for OS {vm.os_type}; use one of {', '.join(sorted(allowed))}",
        )
    return None


def refuse_network(vm: Vm, network: Network) -> Refusal:
    """A VM's NIC connects only to a network attached to the VM's cluster."""
    if vm.cluster_id not in network.cluster_ids:
        return EngineError(
            errors.NETWORK_NOT_IN_CLUSTER,
            f"network {network.name} is not attached to the cluster of VM {vm.name}; attach it to the cluster first",
        )
    return None


def refuse_attach(cluster: Cluster, network: Network) -> Refusal:
    """A network is attached only to clusters of its own data center."""
    if network.data_center_id != cluster.data_center_id:
        return EngineError(
            errors.NETWORK_NOT_IN_CLUSTER,
            f"network {network.name} belongs to another data center than cluster {cluster.name}",
        )
    return None


def nic_action_refusals(vm: Vm, nic: Nic, site: Site) -> dict[str, str]:
    """Why each NIC action would be refused now: the API's ``disabled_actions``.  Allowed
    actions are absent.  Activating a plugged NIC is allowed by the engine (nothing to do), but
    offered to nobody.  ``edit`` is a change of anything, ``edit_link`` of the link state alone
    (what a NIC plugged into a running VM allows)."""
    reasons = {
        "activate": EngineError(errors.CONFLICT, f"NIC {nic.name} is already plugged")
        if nic.plugged
        else refuse_plug(vm, nic, site),
        "deactivate": refuse_unplug(vm, nic, site)
        if nic.plugged
        else EngineError(errors.CONFLICT, f"NIC {nic.name} is not plugged"),
        "edit": refuse_update(vm, nic, site),
        "edit_link": refuse_update(vm, nic, site, LIVE_NIC_FIELDS),
        "remove": refuse_remove(vm, nic),
    }
    return {action: why.detail for action, why in reasons.items() if why is not None}


# -- disks ------------------------------------------------------------------------------------

DISK_FORMATS = tuple(DRIVE_FORMATS)  # VDSM's: raw, cow (qcow2)
DISK_INTERFACES = DRIVE_IFACES  # the hosts' virtio only (oVirt also has ide, sata, virtio_scsi, ...)


def refuse_attach_disk(vm: Vm, disks: list[Disk], disk: Disk) -> Refusal:
    """A disk is attached while the VM is down (no disk hot plug here); it names an image of the
    hosts' images directory, raw or cow, on virtio; at most the hosts' limit of disks, each image
    once (QEMU locks an image it writes), one bootable disk (oVirt's rule)."""
    if vm.status != DOWN:
        return EngineError(
            errors.VM_STATUS_ILLEGAL,
            f"VM {vm.name} is {_status_word(vm)}: disks are attached and detached only while it is down "
            "(this engine does not hot-plug disks)",
        )
    try:
        parse_image_name(disk.name, "disk.name")
        named = bool(disk.name)
    except ParamError:
        named = False
    if not named:
        return EngineError(
            errors.INVALID, f"disk.name names an image file, not a path: {IMAGE_NAME_RULE}; got {shown(disk.name)}"
        )
    if disk.format not in DISK_FORMATS:
        return EngineError(errors.INVALID, f"disk.format must be raw or cow (qcow2), got {shown(disk.format)}")
    if disk.interface not in DISK_INTERFACES:
        return EngineError(
            errors.INVALID,
            f"interface must be {', '.join(DISK_INTERFACES)} (the hosts' only one), got {shown(disk.interface)}",
        )
    if len(disks) >= MAX_DRIVES:
        return EngineError(errors.CONFLICT, f"VM {vm.name} has {len(disks)} disks already; the limit is {MAX_DRIVES}")
    if any(d.name == disk.name for d in disks):
        return EngineError(errors.NAME_IN_USE, f"VM {vm.name} has disk {disk.name} already")
    bootable = next((d for d in disks if d.bootable), None)
    if disk.bootable and bootable is not None:
        return EngineError(
            errors.CONFLICT, f"VM {vm.name} boots from disk {bootable.name} already; a VM has one bootable disk"
        )
    return None


def refuse_detach_disk(vm: Vm) -> Refusal:
    if vm.status != DOWN:
        return EngineError(
            errors.VM_STATUS_ILLEGAL,
            f"VM {vm.name} is {_status_word(vm)}: disks are attached and detached only while it is down "
            "(this engine does not hot-plug disks)",
        )
    return None


# -- vNIC profiles and network QoS ----------------------------------------------------------


def _users(users: list[ProfileUser], limit: int = 5) -> str:
    named = ", ".join(f"{u.vm_name}/{u.nic_name}" for u in users[:limit])
    return named + (f" and {len(users) - limit} more" if len(users) > limit else "")


def refuse_profile(profile: VnicProfile) -> Refusal:
    """A profile's name; and, as oVirt: pass-through takes neither port mirroring nor QoS (the
    NIC bypasses the host's bridge, where both are applied)."""
    bad_name = refuse_name("vNIC profile", profile.name)
    if bad_name is not None:
        return bad_name
    if profile.pass_through and (profile.port_mirroring or profile.qos_id):
        return EngineError(
            errors.INVALID,
            "a pass-through (SR-IOV) vNIC profile has neither port mirroring nor a QoS: its NICs bypass the "
            "host's bridge, where both are applied",
        )
    return None


def refuse_profile_change(old: VnicProfile, new: VnicProfile, users: list[ProfileUser]) -> Refusal:
    """oVirt's canDo for a profile update: its network stays; what a host applies (port mirroring,
    QoS, pass-through) does not change under NICs plugged into running VMs; pass-through is not
    enabled on a profile that NICs use."""
    refusal = refuse_profile(new)
    if refusal is not None:
        return refusal
    if new.network_id != old.network_id:
        return EngineError(errors.INVALID, f"the network of vNIC profile {old.name} cannot change")
    changed = [
        what
        for what, before, after in (
            ("port mirroring", old.port_mirroring, new.port_mirroring),
            ("QoS", old.qos_id, new.qos_id),
            ("pass-through", old.pass_through, new.pass_through),
        )
        if before != after
    ]
    on_hosts = [u for u in users if u.on_a_host]
    if changed and on_hosts:
        return EngineError(
            errors.PROFILE_USED_ON_HOSTS,
            f"vNIC profile {old.name} is used by NICs plugged into running VMs ({_users(on_hosts)}); deactivate "
            f"them (or stop their VMs) before changing its {', '.join(changed)}",
        )
    if new.pass_through and not old.pass_through and users:
        return EngineError(
            errors.IN_USE,
            f"pass-through cannot be enabled on vNIC profile {old.name} while NICs use it ({_users(users)})",
        )
    return None


def refuse_remove_profile(profile: VnicProfile, users: list[ProfileUser]) -> Refusal:
    """As oVirt: a profile that NICs use stays."""
    if users:
        return EngineError(
            errors.IN_USE,
            f"vNIC profile {profile.name} is used by NICs ({_users(users)}); give them another profile "
            "(or remove them) first",
        )
    return None


def refuse_qos(qos: NetworkQos) -> Refusal:
    """oVirt's network QoS rules: a name; per direction all of average, peak and burst or none
    (checked where they are read); peak at least the average; oVirt's default ranges."""
    refusal = refuse_name("QoS", qos.name)
    for direction, rate in (("inbound", qos.inbound), ("outbound", qos.outbound)):
        if refusal is not None or rate is None:
            continue
        refusal = _first(
            refuse_range(f"{direction}_average", rate.average, 1, QOS_AVERAGE_MAX),
            refuse_range(f"{direction}_peak", rate.peak, 1, QOS_PEAK_MAX),
            refuse_range(f"{direction}_burst", rate.burst, 1, QOS_BURST_MAX),
        )
        if refusal is None and rate.peak < rate.average:
            refusal = EngineError(
                errors.INVALID,
                f"{direction}_peak ({rate.peak} Mbps) must be at least {direction}_average ({rate.average} Mbps)",
            )
    return refusal


def refuse_qos_change(old: NetworkQos, new: NetworkQos, users: list[ProfileUser]) -> Refusal:
    """A QoS's rates do not change under NICs plugged into running VMs (those of the profiles using it)."""
    refusal = refuse_qos(new)
    if refusal is not None:
        return refusal
    on_hosts = [u for u in users if u.on_a_host]
    if (old.inbound, old.outbound) != (new.inbound, new.outbound) and on_hosts:
        return EngineError(
            errors.PROFILE_USED_ON_HOSTS,
            f"QoS {old.name} is used by vNIC profiles of NICs plugged into running VMs ({_users(on_hosts)}); "
            "deactivate them (or stop their VMs) before changing its rates",
        )
    return None


def refuse_remove_qos(qos: NetworkQos, profiles: list[str]) -> Refusal:
    if profiles:
        return EngineError(
            errors.IN_USE,
            f"QoS {qos.name} is used by vNIC profiles {', '.join(profiles)}; take it off them first",
        )
    return None


# -- VM actions -----------------------------------------------------------------------------


def refuse_new_vm(vm: Vm) -> Refusal:
    bad_name = refuse_name("VM", vm.name)
    if bad_name is not None:
        return bad_name
    if vm.os_type not in OS_TYPES:
        return EngineError(errors.INVALID_OS, f"unknown OS type {shown(vm.os_type)}; known: {', '.join(OS_TYPES)}")
    try:
        check_vm_name(vm.name)
    except ParamError as exc:
        return EngineError(errors.INVALID, f"VM name {exc.detail.removeprefix('vmName: ')}")
    for field, image in (("os.kernel", vm.kernel), ("os.initrd", vm.initrd)):
        try:
            parse_image_name(image, field)
        except ParamError:
            return EngineError(
                errors.INVALID, f"{field} names an image, not a path: {IMAGE_NAME_RULE}; got {shown(image)}"
            )
    try:
        check_kernel_args(vm.cmdline)  # the host's rule: refused here rather than at the start
    except ParamError:
        return EngineError(errors.INVALID, f"os.cmdline must be printable characters, got {shown(vm.cmdline)}")
    return _first(refuse_memory(vm.memory_bytes), refuse_machine(vm))


def refuse_machine(vm: Vm) -> Refusal:
    """oVirt's bios.type (SeaBIOS on i440fx or q35; the hosts have no UEFI firmware) and
    custom_emulated_machine (a QEMU machine the host takes), which must not contradict it."""
    if vm.bios_type in (Q35_OVMF, Q35_SECURE_BOOT):
        return EngineError(
            errors.INVALID,
            f"bios.type {vm.bios_type} needs UEFI firmware (OVMF), which the hosts of this engine do not have; "
            f"use {Q35_SEA_BIOS} (q35 with SeaBIOS) or {I440FX_SEA_BIOS}",
        )
    if vm.bios_type not in (I440FX_SEA_BIOS, Q35_SEA_BIOS):
        return EngineError(
            errors.INVALID, f"bios.type must be one of {', '.join(BIOS_TYPES)}, got {shown(vm.bios_type)}"
        )
    if vm.custom_emulated_machine:
        try:
            parse_machine(vm.custom_emulated_machine)
        except ParamError:
            return EngineError(
                errors.INVALID,
                f"custom_emulated_machine must be {MACHINE_RULE}, got {shown(vm.custom_emulated_machine)}",
            )
        q35 = is_q35(vm.custom_emulated_machine)
        if q35 != (vm.bios_type == Q35_SEA_BIOS):
            return EngineError(
                errors.INVALID,
                f"custom_emulated_machine {vm.custom_emulated_machine} is {'a q35' if q35 else 'an i440fx'} machine, "
                f"but bios.type is {vm.bios_type}: give a machine of that chipset, or leave bios out",
            )
    return None


def refuse_start(vm: Vm) -> Refusal:
    if vm.status != DOWN:
        return EngineError(errors.VM_STATUS_ILLEGAL, f"VM {vm.name} is {_status_word(vm)}, not down")
    return None


def refuse_remove_vm(vm: Vm) -> Refusal:
    if vm.status != DOWN:
        return EngineError(errors.VM_STATUS_ILLEGAL, f"VM {vm.name} is {_status_word(vm)}; stop it before removing it")
    return None


def vm_action_refusals(vm: Vm) -> dict[str, str]:
    """The API's ``disabled_actions`` of a VM.  Stopping a VM that is down is allowed by the
    engine (nothing to do), but offered to nobody."""
    reasons = {
        "start": refuse_start(vm),
        "stop": EngineError(errors.CONFLICT, f"VM {vm.name} is not running") if vm.status == DOWN else None,
        "remove": refuse_remove_vm(vm),
    }
    return {action: why.detail for action, why in reasons.items() if why is not None}
