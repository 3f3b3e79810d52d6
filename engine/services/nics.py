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
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.macpool import free_macs, int_to_mac, is_unicast, mac_at, next_free
from engine.domain.model import Nic, Vm
from engine.domain.rules import (
    Site,
    check,
    refuse_network,
    refuse_nic_fields,
    refuse_pass_through,
    refuse_plug,
    refuse_remove,
    refuse_unplug,
    refuse_update,
)
from engine.services.context import Context
from engine.services.follow import follow_host
from shared_schema.errors import ParamError
from shared_schema.nic import parse_mac

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


async def _with_profile(repo: Repository, vm: Vm, nic: Nic, profile_id: str) -> Nic:
    """The NIC on that profile, with the network facts a host call needs."""
    profile = await repo.profile(profile_id)
    network = await repo.network(profile.network_id)
    check(refuse_network(vm, network))
    if nic.plugged:
        check(refuse_pass_through(nic.name, profile.pass_through))
    qos = await repo.qos(profile.data_center_id, profile.qos_id) if profile.qos_id else None
    return nic.changed(
        profile_id=profile.id, network_name=network.name, bridge=network.bridge, port_mirroring=profile.port_mirroring,
        pass_through=profile.pass_through, qos=qos,
    )  # fmt: skip


async def _plug(
    ctx: Context, repo: Repository, user: str, vm: Vm, site: Site, nic: Nic, profile_held: bool = False
) -> Nic:
    """``profile_held``: the caller share-locked the NIC's profile before it read the NIC."""
    if vm.running and nic.profile_id and not profile_held:
        # What the host applies for the profile (port mirroring, QoS) holds still until this
        # transaction ends: a change of the profile waits, or this plug waits for it and sees it.
        await repo.profile(nic.profile_id, lock="SHARE")
        nic = await repo.nic(vm.id, nic.id)
    check(refuse_plug(vm, nic, site))
    if not vm.running:
        plugged = nic.changed(plugged=True)
        await repo.set_device(plugged)
        return plugged
    host = site.host
    assert host is not None  # refuse_plug: a running VM has its host
    op = await ctx.journal.begin(repo, "plug", host, vm, user, nic)
    placed = await op.call(ctx.hosts.plug(host, vm, nic))
    plugged = nic.changed(plugged=True, alias=placed.alias, address=placed.address)
    try:
        await repo.set_device(plugged, ending=op.id)  # the operation ends with its outcome
    except (EngineError, asyncpg.PostgresError) as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.OperatorInterventionError):
            raise  # the database is away, not refusing: the journal has monitoring store it later
        # The host has it, the database refuses it: take it out again rather than diverge.
        try:
            await ctx.hosts.unplug(host, vm, plugged)
        except EngineError as undo:
            log.error("VM %s: NIC %s stays plugged on host %s: %s", vm.name, nic.name, host.name, undo.detail)
        else:
            await op.forget()
        raise
    return plugged


async def _unplug(ctx: Context, repo: Repository, user: str, vm: Vm, site: Site, nic: Nic) -> Nic:
    check(refuse_unplug(vm, nic, site))
    ending = None
    if vm.running:
        assert site.host is not None  # refuse_unplug: a running VM has its host
        op = await ctx.journal.begin(repo, "unplug", site.host, vm, user, nic)
        await op.call(ctx.hosts.unplug(site.host, vm, nic))
        ending = op.id
    # The seed: clear the address on unplug, so the next plug cannot collide with another device.
    unplugged = nic.changed(plugged=False, address=None)
    await repo.set_device(unplugged, ending=ending)  # the operation, if any, ends with its outcome
    return unplugged


async def _as_the_host_has_it(
    ctx: Context, repo: Repository, vm: Vm, nic: Nic, changes_nothing: bool, found: tuple[Site, bool] | None = None
) -> tuple[Vm, Nic, Site]:
    """The VM, the NIC and their site, checked with the host when the database alone cannot be
    trusted: the request would change nothing by its account, or an operation on the VM was
    interrupted before its outcome was stored.  The host is the truth for a running VM.
    ``found``: the site and the interruption, when the caller read them with the NIC."""
    site, interrupted = found or await repo.plug_site(vm)
    if not (vm.running and site.host) or not (changes_nothing or interrupted):
        return vm, nic, site
    await follow_host(ctx, repo, site.host, vm)
    vm = await repo.vm(vm.id)
    return vm, await repo.nic(vm.id, nic.id), await repo.site(vm)


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
        model = fields.model or "virtio"
        check(refuse_nic_fields(vm, await repo.nics(vm.id), "", name, model))
        if fields.profile_id is None:
            raise EngineError(errors.INVALID, "a NIC needs a vnic_profile (the network it connects to)")
        nic = Nic(
            id=str(uuid.uuid4()), vm_id=vm.id, name=name, mac="", model=model, profile_id=None,
            linked=True if fields.linked is None else fields.linked, plugged=False,
        )  # fmt: skip
        nic = await _with_profile(repo, vm, nic, fields.profile_id)
        nic = await _insert_with_mac(repo, nic, fields.mac)
        if activate:
            nic = await _plug(ctx, repo, user, vm, await repo.site(vm), nic)
        await repo.audit(ADDED, "normal", f"NIC {nic.name} ({nic.mac}) was added to VM {vm.name}.", user, vm, nic)
        if nic.plugged:
            await _audit_plug(repo, user, vm, nic)
    return nic


async def _insert_with_mac(repo: Repository, nic: Nic, requested: str | None) -> Nic:
    if requested:
        with_mac = nic.changed(mac=_valid_mac(requested))
        await repo.insert_nic(with_mac)
        return with_mac
    # The pool's cursor gives each add its own candidate (engine/domain/macpool.py); a taken one
    # (given by hand, or in use from before the cursor) moves the cursor on to the next free MAC.
    # Each try runs in a savepoint, so the caller's transaction goes on either way.
    ranges, offset = await repo.take_mac_offset()
    used: list[str] | None = None  # read once, and only when the cursor's candidate was taken
    for _ in range(3):  # another engine may take the same free MAC at the same moment
        value = mac_at(ranges, offset)
        if value is None:
            break  # past the end of the ranges
        if is_unicast(value) and await repo.try_insert_nic(nic.changed(mac=int_to_mac(value))):
            return nic.changed(mac=int_to_mac(value))
        used = used or await repo.used_macs()
        found = next_free(ranges, offset + 1, used)
        if found is None:
            break
        offset = await repo.move_mac_cursor(found)
    for mac in free_macs(ranges, await repo.used_macs()):  # the ranges are used up to their ends
        if await repo.try_insert_nic(nic.changed(mac=mac)):
            return nic.changed(mac=mac)
    raise EngineError(errors.MAC_POOL_EMPTY, "no free MAC address is left in the MAC pool")


async def set_plugged(ctx: Context, user: str, vm_id: str, nic_id: str, plug: bool) -> Nic:
    """plugUnplugNic(vmId, nicId, plug): activate or deactivate; idempotent."""
    what = f"{'plug' if plug else 'unplug'} NIC {{nic}} of"
    log_type = PLUG_FAILED if plug else UNPLUG_FAILED
    async with ctx.failure_audited(user, log_type, what, vm_id, nic_id) as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        if plug:
            # What the host applies for the NIC's profile (port mirroring, QoS) holds still until
            # this transaction ends: a change of the profile waits, or this plug waits for it and
            # then reads what it changed.  Held before the NIC is read, so one read does.
            await repo.hold_nic_profile(nic_id)
        nic, site, interrupted = await repo.nic_at_site(vm, nic_id)
        seen.nic = nic
        vm, nic, site = await _as_the_host_has_it(ctx, repo, vm, nic, nic.plugged == plug, (site, interrupted))
        if nic.plugged == plug:
            return nic  # nothing to do, nothing changes
        if plug:
            changed = await _plug(ctx, repo, user, vm, site, nic, profile_held=True)
        else:
            changed = await _unplug(ctx, repo, user, vm, site, nic)
        await _audit_plug(repo, user, vm, changed)
    return changed


async def update_nic(ctx: Context, user: str, vm_id: str, nic_id: str, fields: NicFields, plugged: bool | None) -> Nic:
    """Apply field changes and, when asked, plug or unplug: all in one transaction, so a refused
    plug leaves the fields unchanged too.  On a NIC plugged into a running VM only the link state
    may change, and it changes on the host at once (VM.updateDevice)."""
    audited = ctx.failure_audited(user, UPDATE_FAILED, "update NIC {nic} of", vm_id, nic_id)
    async with audited as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        nic = seen.nic = await repo.nic(vm.id, nic_id)
        if fields.linked is not None and nic.plugged and vm.running:
            vm, nic, _ = await _as_the_host_has_it(ctx, repo, vm, nic, nic.linked == fields.linked)
        updated = await _apply_fields(repo, vm, nic, fields)
        if updated != nic:
            site = await repo.site(vm)
            check(refuse_update(vm, nic, site, _changed(nic, updated)))
            if vm.running and nic.plugged:  # the rule let only the link state through
                updated = await _set_link(ctx, repo, user, vm, site, updated)
            else:
                await repo.update_nic(updated)
            link = f" Its link is {'up' if updated.linked else 'down'} now." if updated.linked != nic.linked else ""
            message = f"NIC {updated.name} of VM {vm.name} was updated.{link}"
            await repo.audit(UPDATED, "normal", message, user, vm, updated)
        final = updated
        if plugged is not None:
            vm, final, site = await _as_the_host_has_it(ctx, repo, vm, updated, updated.plugged == plugged)
        if plugged is not None and plugged != final.plugged:
            final = await (_plug if plugged else _unplug)(ctx, repo, user, vm, site, final)
            await _audit_plug(repo, user, vm, final)
    return final


def _changed(before: Nic, after: Nic) -> frozenset[str]:
    """The fields an update changes, by the API's names (as the update rule takes them)."""
    pairs = {
        "name": (before.name, after.name),
        "interface": (before.model, after.model),
        "mac": (before.mac, after.mac),
        "vnic_profile": (before.profile_id, after.profile_id),
        "linked": (before.linked, after.linked),
    }
    return frozenset(field for field, (old, new) in pairs.items() if old != new)


async def _set_link(ctx: Context, repo: Repository, user: str, vm: Vm, site: Site, nic: Nic) -> Nic:
    """The link of a NIC plugged into a running VM, changed on its host in place (journaled, as a
    plug is: a lost answer is settled by monitoring from what the host reports)."""
    assert site.host is not None  # refuse_update: a running VM has its host
    op = await ctx.journal.begin(repo, "update", site.host, vm, user, nic)
    placed = await op.call(ctx.hosts.set_link(site.host, vm, nic))
    stored = nic.changed(linked=placed.link_active)
    await repo.update_nic(stored)
    await op.done()
    return stored


async def _apply_fields(repo: Repository, vm: Vm, nic: Nic, fields: NicFields) -> Nic:
    updated = nic.changed(
        name=nic.name if fields.name is None else fields.name,
        model=nic.model if fields.model is None else fields.model,
        mac=nic.mac if fields.mac is None else _valid_mac(fields.mac),
        linked=nic.linked if fields.linked is None else fields.linked,
    )
    if (updated.name, updated.model) != (nic.name, nic.model):
        check(refuse_nic_fields(vm, await repo.nics(vm.id), nic.id, updated.name, updated.model))
    if fields.profile_id is not None and fields.profile_id != nic.profile_id:
        updated = await _with_profile(repo, vm, updated, fields.profile_id)
    return updated


async def remove_nic(ctx: Context, user: str, vm_id: str, nic_id: str) -> None:
    audited = ctx.failure_audited(user, REMOVE_FAILED, "remove NIC {nic} from", vm_id, nic_id)
    async with audited as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        nic = seen.nic = await repo.nic(vm.id, nic_id)
        check(refuse_remove(vm, nic))
        await repo.delete_nic(nic.id)
        await repo.audit(REMOVED, "normal", f"NIC {nic.name} was removed from VM {vm.name}.", user, vm, nic)
