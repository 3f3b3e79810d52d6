"""NIC use cases: add, update, remove, and plug / unplug (activate / deactivate).

Each runs in one transaction that first takes the VM's row lock, so that changes to one VM
are serialised across every engine process while other VMs proceed.  Rules are checked
before anything changes; a host refusal rolls the transaction back, so the database stays as
it was, and the audit log records what happened either way.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import asyncpg

from engine.adapters.repository import Repository
from engine.domain import errors, rules
from engine.domain.errors import EngineError
from engine.domain.macpool import free_macs
from engine.domain.model import Cluster, Nic, Vm
from engine.services.context import Context
from engine.services.hosts_calls import alias_of, nic_spec
from shared_schema.errors import ParamError
from shared_schema.nic import PciAddress, parse_mac

log = logging.getLogger(__name__)

# oVirt's audit log types.
PLUGGED, PLUG_FAILED, UNPLUGGED, UNPLUG_FAILED = 1012, 1013, 1014, 1015
ADDED, ADD_FAILED, UPDATED, UPDATE_FAILED, REMOVED, REMOVE_FAILED = 932, 933, 934, 935, 930, 931


@dataclass(frozen=True)
class NicFields:
    """What a caller may set on a NIC; None leaves a field as it is (or picks a default)."""

    name: str | None = None
    model: str | None = None
    mac: str | None = None
    profile_id: str | None = None
    linked: bool | None = None


def _valid_mac(mac: str) -> str:
    try:
        return parse_mac(mac, "mac.address")
    except ParamError as exc:
        raise EngineError(errors.INVALID_MAC, exc.detail) from None


async def _profile_network(repo: Repository, vm: Vm, profile_id: str) -> tuple[str, str, bool]:
    profile = await repo.profile(profile_id)
    network = await repo.network(profile.network_id)
    rules.network_in_cluster(vm, network)
    return network.name, network.bridge, profile.port_mirroring


async def _plug(ctx: Context, repo: Repository, vm: Vm, cluster: Cluster, nic: Nic) -> Nic:
    rules.vm_status_allows_plug(vm)
    rules.mac_free_for_plug(nic, await repo.plugged_with_mac(nic.mac))
    rules.pci_budget(await repo.plugged_count(vm.id))
    if not vm.running:
        plugged = nic.changed(plugged=True)
        await repo.set_device(plugged)
        return plugged
    rules.hotplug_supported(vm, cluster)
    if not nic.bridge:
        raise EngineError(errors.INVALID, f"NIC {nic.name} has no vNIC profile; choose a network before activating it")
    host = await repo.host(vm.host_id or "")
    rules.network_on_host(nic.network_name, cluster, host)
    result = await ctx.call_host(
        host, errors.ACTIVATE_NIC_FAILED, "VM.hotplugNic", vmId=vm.id, nic=nic_spec(nic).to_params()
    )
    placed = result["nic"]
    plugged = nic.changed(
        plugged=True,
        alias=placed["alias"],
        address=PciAddress.parse(placed["address"]) if placed.get("address") else None,
    )
    try:
        await repo.set_device(plugged)
    except (EngineError, asyncpg.PostgresError):
        # The host has it, the database refuses it: take it out again rather than diverge.
        try:
            await ctx.call_host(
                host, errors.DEACTIVATE_NIC_FAILED, "VM.hotunplugNic", vmId=vm.id, nic={"alias": plugged.alias}
            )
        except EngineError as undo:
            log.error("VM %s: NIC %s stays plugged on host %s: %s", vm.name, nic.name, host.name, undo.detail)
        raise
    return plugged


async def _unplug(ctx: Context, repo: Repository, vm: Vm, cluster: Cluster, nic: Nic) -> Nic:
    rules.vm_status_allows_plug(vm)
    if vm.running:
        rules.hotplug_supported(vm, cluster)
        host = await repo.host(vm.host_id or "")
        try:
            await ctx.call_host(
                host, errors.DEACTIVATE_NIC_FAILED, "VM.hotunplugNic", vmId=vm.id, nic={"alias": alias_of(nic)}
            )
        except EngineError as exc:
            if exc.data.get("reason") != "noSuchDevice":
                raise
            log.warning("VM %s: NIC %s was already gone from host %s", vm.name, nic.name, host.name)
    # The seed: clear the address on unplug, so the next plug cannot collide with another device.
    unplugged = nic.changed(plugged=False, address=None)
    await repo.set_device(unplugged)
    return unplugged


async def _audit_plug(repo: Repository, user: str, vm: Vm, nic: Nic) -> None:
    """Recorded in the use case's own transaction, so entries keep the order of the VM lock."""
    message = f"NIC {nic.name} was {'plugged into' if nic.plugged else 'unplugged from'} VM {vm.name}."
    await repo.audit(PLUGGED if nic.plugged else UNPLUGGED, "normal", message, user, vm, nic)


async def add_nic(ctx: Context, user: str, vm_id: str, fields: NicFields, activate: bool = True) -> Nic:
    name = fields.name or ""
    async with (
        ctx.failure_audited(user, ADD_FAILED, "add NIC {nic} to", vm_id, name) as seen,
        ctx.transaction() as repo,
    ):
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        cluster = await repo.cluster(vm.cluster_id)
        if not name:
            raise EngineError(errors.INVALID, "a NIC needs a name")
        rules.name_free(await repo.nics(vm.id), name)
        model = fields.model or "virtio"
        rules.model_allowed(vm, model)
        if fields.profile_id is None:
            raise EngineError(errors.INVALID, "a NIC needs a vnic_profile (the network it connects to)")
        network_name, bridge, mirroring = await _profile_network(repo, vm, fields.profile_id)
        if activate and not vm.running:
            rules.vm_status_allows_plug(vm)
        nic = Nic(
                id=str(uuid.uuid4()), vm_id=vm.id, name=name, mac="", model=model, profile_id=fields.profile_id,
                linked=True if fields.linked is None else fields.linked, plugged=False,
                network_name=network_name, bridge=bridge, port_mirroring=mirroring,
            )  # fmt: skip
        nic = await _insert_with_mac(repo, nic, fields.mac)
        if activate:
            nic = await _plug(ctx, repo, vm, cluster, nic)
        await repo.audit(ADDED, "normal", f"NIC {nic.name} ({nic.mac}) was added to VM {vm.name}.", user, vm, nic)
        if nic.plugged:
            await _audit_plug(repo, user, vm, nic)
    return nic


async def _insert_with_mac(repo: Repository, nic: Nic, requested: str | None) -> Nic:
    if requested:
        with_mac = nic.changed(mac=_valid_mac(requested))
        await repo.insert_nic(with_mac)
        return with_mac
    # The lowest free MAC; another engine may take the same one at the same moment, so each
    # try runs in a savepoint and a taken MAC moves on to the next.
    for mac in free_macs(await repo.mac_ranges(), await repo.used_macs()):
        if await repo.try_insert_nic(nic.changed(mac=mac)):
            return nic.changed(mac=mac)
    raise EngineError(errors.MAC_POOL_EMPTY, "no free MAC address is left in the MAC pool")


async def set_plugged(ctx: Context, user: str, vm_id: str, nic_id: str, plug: bool) -> Nic:
    """plugUnplugNic(vmId, nicId, plug): activate or deactivate; idempotent."""
    what = f"{'plug' if plug else 'unplug'} NIC {{nic}} of"
    log_type = PLUG_FAILED if plug else UNPLUG_FAILED
    async with ctx.failure_audited(user, log_type, what, vm_id, nic_id) as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        nic = seen.nic = await repo.nic(vm.id, nic_id)
        if nic.plugged == plug:
            return nic  # nothing to do, nothing changes
        cluster = await repo.cluster(vm.cluster_id)
        changed = await (_plug if plug else _unplug)(ctx, repo, vm, cluster, nic)
        await _audit_plug(repo, user, vm, changed)
    return changed


async def update_nic(ctx: Context, user: str, vm_id: str, nic_id: str, fields: NicFields, plugged: bool | None) -> Nic:
    """Apply field changes and, when asked, plug or unplug: all in one transaction, so a refused
    plug leaves the fields unchanged too."""
    audited = ctx.failure_audited(user, UPDATE_FAILED, "update NIC {nic} of", vm_id, nic_id)
    async with audited as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        nic = seen.nic = await repo.nic(vm.id, nic_id)
        updated = await _apply_fields(repo, vm, nic, fields)
        if updated != nic:
            rules.update_allowed(vm, nic)
            await repo.update_nic(updated)
            await repo.audit(UPDATED, "normal", f"NIC {updated.name} of VM {vm.name} was updated.", user, vm, updated)
        final = updated
        if plugged is not None and plugged != updated.plugged:
            cluster = await repo.cluster(vm.cluster_id)
            final = await (_plug if plugged else _unplug)(ctx, repo, vm, cluster, updated)
            await _audit_plug(repo, user, vm, final)
    return final


async def _apply_fields(repo: Repository, vm: Vm, nic: Nic, fields: NicFields) -> Nic:
    updated = nic
    if fields.name is not None and fields.name != nic.name:
        rules.name_free(await repo.nics(vm.id), fields.name, exclude=nic.id)
        updated = updated.changed(name=fields.name)
    if fields.model is not None and fields.model != nic.model:
        rules.model_allowed(vm, fields.model)
        updated = updated.changed(model=fields.model)
    if fields.mac is not None and _valid_mac(fields.mac) != nic.mac:
        updated = updated.changed(mac=_valid_mac(fields.mac))
    if fields.profile_id is not None and fields.profile_id != nic.profile_id:
        network_name, bridge, mirroring = await _profile_network(repo, vm, fields.profile_id)
        updated = updated.changed(
            profile_id=fields.profile_id, network_name=network_name, bridge=bridge, port_mirroring=mirroring
        )
    if fields.linked is not None and fields.linked != nic.linked:
        updated = updated.changed(linked=fields.linked)
    return updated


async def remove_nic(ctx: Context, user: str, vm_id: str, nic_id: str) -> None:
    audited = ctx.failure_audited(user, REMOVE_FAILED, "remove NIC {nic} from", vm_id, nic_id)
    async with audited as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        nic = seen.nic = await repo.nic(vm.id, nic_id)
        rules.remove_allowed(vm, nic)
        await repo.delete_nic(nic.id)
        await repo.audit(REMOVED, "normal", f"NIC {nic.name} was removed from VM {vm.name}.", user, vm, nic)
