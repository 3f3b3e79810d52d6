"""Follow a host: bring one VM's rows to what its host reports, under the VM's row lock.

Host monitoring does this for every VM that moved; a use case does it first when the database
alone cannot be trusted — an activate of a NIC the database says is plugged, a start of a VM it
says is up, and any request on a VM with an operation the journal still holds.  The rules are
:func:`engine.domain.reconcile.reconcile`; this applies them, with their audit entries.
"""

from __future__ import annotations

from engine.adapters.repository import Repository
from engine.domain import reconcile as rules
from engine.domain.model import Host, Nic, Vm
from engine.services.context import Context
from shared_schema.answers import VmStats

ENGINE_USER = "engine"


async def follow_host(ctx: Context, repo: Repository, host: Host, vm: Vm) -> tuple[rules.Changes, VmStats | None]:
    """``repo``'s transaction must hold the VM's row lock: what the host reports is then never
    older than a change the engine made, and no interrupted operation is still running."""
    reported = await ctx.hosts.vm_on_host(host, vm.id)
    nics = await repo.nics(vm.id)
    foreign = (await repo.unmanaged_nics([vm.id])).get(vm.id, [])
    known = {rules.foreign_key(n.alias, n.mac) for n in foreign}
    interrupted = await repo.open_operations(vm.id)
    changes = rules.reconcile(vm, host.id, host.name, nics, reported, known, interrupted)
    if changes.vm is not None:
        await repo.set_vm_status(vm.id, changes.vm.status, changes.vm.host_id)
        await _audit(repo, changes.vm.audit, vm, None, host)
    by_id = {n.id: n for n in nics}
    for change in changes.nics:
        await repo.set_device(change.nic)
        if change.nic.linked != by_id[change.nic.id].linked:
            await repo.set_linked(change.nic.id, change.nic.linked)
        if change.audit is not None:
            await _audit(repo, change.audit, vm, change.nic, host)
    if changes.foreign is not None:
        await repo.set_unmanaged_nics(vm.id, changes.foreign.nics)
        for placed in changes.foreign.new:
            await _audit(repo, rules.unmanaged_audit(vm, host.name, placed), vm, None, host)
    for op, audit in zip(interrupted, changes.settled, strict=True):
        await repo.end_operation(op.id)
        await _audit(repo, audit, vm, by_id.get(op.nic_id or ""), host)
    return changes, reported


async def _audit(repo: Repository, audit: rules.Audit, vm: Vm, nic: Nic | None, host: Host) -> None:
    await repo.audit(audit.log_type, audit.severity, audit.message, ENGINE_USER, vm, nic, host)
