"""The seed's canDo rules: each checks one thing and raises an EngineError that says why.

Pure functions over domain values; the services call them before changing anything.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import DOWN, POWERING_DOWN, RUNNING, Cluster, Host, Network, Nic, Version, Vm
from engine.domain.os_types import OS_TYPES

HOTPLUG_MIN_VERSION = Version(3, 1)
# x86 guests: PCI slots left for devices after the chipset's own (oVirt's limit).
PCI_DEVICE_BUDGET = 26
# VM statuses in which a NIC may be plugged or unplugged (oVirt's ActivateDeactivateVmNic).
PLUG_STATUSES = frozenset({DOWN, POWERING_DOWN, *RUNNING})


def vm_status_allows_plug(vm: Vm) -> None:
    if vm.status not in PLUG_STATUSES:
        raise EngineError(
            errors.VM_STATUS_ILLEGAL,
            f"VM {vm.name} is {vm.status.replace('_', ' ')}; NICs can change only while it is up or down",
        )


def hotplug_supported(vm: Vm, cluster: Cluster) -> None:
    """Hot plug/unplug on a running VM needs a 3.1+ cluster and an OS from the seed's list."""
    if not cluster.version.at_least(HOTPLUG_MIN_VERSION):
        raise EngineError(
            errors.HOTPLUG_CLUSTER_VERSION,
            f"hot plug of NICs needs cluster compatibility version {HOTPLUG_MIN_VERSION} or later; "
            f"cluster {cluster.name} is at {cluster.version}. Stop the VM to change its NICs",
        )
    os = OS_TYPES.get(vm.os_type)
    if os is None or not os.nic_hotplug:
        supported = ", ".join(o.name for o in OS_TYPES.values() if o.nic_hotplug)
        raise EngineError(
            errors.HOTPLUG_OS,
            f"the guest OS {vm.os_type} of VM {vm.name} does not support NIC hot plug "
            f"(supported: {supported}). Stop the VM to change its NICs",
        )


def os_type_known(os_type: str) -> None:
    if os_type not in OS_TYPES:
        raise EngineError(errors.INVALID_OS, f"unknown OS type {os_type!r}; known: {', '.join(OS_TYPES)}")


def model_allowed(vm: Vm, model: str) -> None:
    os = OS_TYPES.get(vm.os_type)
    allowed = os.nic_models if os else frozenset()
    if model not in allowed:
        raise EngineError(
            errors.INVALID_MODEL,
            f"NIC model {model!r} is not valid for OS {vm.os_type}; use one of {', '.join(sorted(allowed))}",
        )


def network_in_cluster(vm: Vm, network: Network) -> None:
    if network.cluster_id != vm.cluster_id:
        raise EngineError(
            errors.NETWORK_NOT_IN_CLUSTER, f"network {network.name} does not belong to the cluster of VM {vm.name}"
        )


def name_free(nics: list[Nic], name: str, exclude: str | None = None) -> None:
    if any(n.name == name and n.id != exclude for n in nics):
        raise EngineError(errors.NIC_NAME_IN_USE, f"the VM already has a NIC named {name}")


def mac_free_for_plug(nic: Nic, plugged_with_mac: list[Nic]) -> None:
    """On plug: no other plugged NIC may carry the same MAC (it would break unplug by MAC)."""
    others = [n for n in plugged_with_mac if n.id != nic.id]
    if others:
        raise EngineError(errors.MAC_IN_USE, f"MAC address {nic.mac} is in use by plugged NIC {others[0].name}")


def pci_budget(plugged_count: int) -> None:
    if plugged_count + 1 > PCI_DEVICE_BUDGET:
        raise EngineError(
            errors.PCI_BUDGET, f"the VM already has {plugged_count} plugged devices; the limit is {PCI_DEVICE_BUDGET}"
        )


def _plugged_into(nic: Nic, vm: Vm) -> str:
    if vm.running:
        return f"NIC {nic.name} is plugged into running VM {vm.name}"
    return f"NIC {nic.name} is plugged into VM {vm.name}, which is {vm.status.replace('_', ' ')}"


def update_allowed(vm: Vm, nic: Nic) -> None:
    """The seed: only when the VM is down or the NIC is not plugged."""
    if vm.status != DOWN and nic.plugged:
        raise EngineError(
            errors.UPDATE_PLUGGED_RUNNING,
            f"{_plugged_into(nic, vm)}; deactivate it (or stop the VM) before editing it",
        )


def remove_allowed(vm: Vm, nic: Nic) -> None:
    """The seed: only when the VM is down or the NIC is deactivated."""
    if vm.status != DOWN and nic.plugged:
        raise EngineError(
            errors.REMOVE_PLUGGED_RUNNING,
            f"{_plugged_into(nic, vm)}; deactivate it (or stop the VM) before removing it",
        )


def network_on_host(network_name: str, cluster: Cluster, host: Host) -> None:
    """Every network of a cluster is carried by every host of that cluster (oVirt's required networks)."""
    if host.cluster_id != cluster.id:
        raise EngineError(
            errors.NETWORK_NOT_IN_CLUSTER,
            f"host {host.name} is not in cluster {cluster.name}, which network {network_name} belongs to",
        )


def _refusal(*checks: Callable[[], None]) -> str:
    for check in checks:
        try:
            check()
        except EngineError as exc:
            return exc.detail
    return ""


def nic_action_refusals(vm: Vm, cluster: Cluster, nic: Nic) -> dict[str, str]:
    """Why each NIC action would be refused now, by the rules above: what a page needs to
    enable its buttons exactly as the engine decides.  Actions that are allowed are absent."""

    def plug_rules() -> None:
        vm_status_allows_plug(vm)
        if vm.running:
            hotplug_supported(vm, cluster)

    reasons = {
        "activate": f"NIC {nic.name} is already plugged" if nic.plugged else _refusal(plug_rules),
        "deactivate": _refusal(plug_rules) if nic.plugged else f"NIC {nic.name} is not plugged",
        "edit": _refusal(lambda: update_allowed(vm, nic)),
        "remove": _refusal(lambda: remove_allowed(vm, nic)),
    }
    return {action: why for action, why in reasons.items() if why}


def vm_action_refusals(vm: Vm) -> dict[str, str]:
    if vm.status == DOWN:
        return {"stop": f"VM {vm.name} is not running"}
    return {"start": f"VM {vm.name} is {vm.status.replace('_', ' ')}"}
