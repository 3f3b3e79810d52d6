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
from engine.domain.limits import refuse_memory, refuse_name, shown
from engine.domain.model import DOWN, POWERING_DOWN, RUNNING, Cluster, Host, Network, Nic, Version, Vm
from engine.domain.os_types import OS_TYPES
from shared_schema.errors import ParamError
from shared_schema.vm import IMAGE_NAME_RULE, check_kernel_args, check_vm_name, parse_image_name

HOTPLUG_MIN_VERSION = Version(3, 1)
# x86 guests: PCI slots left for devices after the chipset's own (oVirt's limit).
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
    if refusal is None and site.plugged_count + 1 > PCI_DEVICE_BUDGET:
        refusal = EngineError(
            errors.PCI_BUDGET,
            f"VM {vm.name} already has {site.plugged_count} plugged devices; the limit is {PCI_DEVICE_BUDGET}",
        )
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


def refuse_update(vm: Vm, nic: Nic) -> Refusal:
    """The seed: a NIC changes only while the VM is down or the NIC is not plugged."""
    if vm.status != DOWN and nic.plugged:
        return EngineError(
            errors.UPDATE_PLUGGED_RUNNING, f"{_plugged_into(nic, vm)}; deactivate it (or stop the VM) before editing it"
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
    offered to nobody."""
    reasons = {
        "activate": EngineError(errors.CONFLICT, f"NIC {nic.name} is already plugged")
        if nic.plugged
        else refuse_plug(vm, nic, site),
        "deactivate": refuse_unplug(vm, nic, site)
        if nic.plugged
        else EngineError(errors.CONFLICT, f"NIC {nic.name} is not plugged"),
        "edit": refuse_update(vm, nic),
        "remove": refuse_remove(vm, nic),
    }
    return {action: why.detail for action, why in reasons.items() if why is not None}


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
    return refuse_memory(vm.memory_bytes)


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
