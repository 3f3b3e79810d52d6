"""VM use cases: add, remove, run (only the plugged NICs go to the host), stop."""

from __future__ import annotations

import logging
import uuid

from engine.adapters.repository import Repository
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import DOWN, UP, Vm
from engine.domain.rules import check, refuse_new_vm, refuse_remove_vm, refuse_start
from engine.services.context import Context
from engine.services.follow import follow_host
from engine.services.hosts_calls import alias_of

log = logging.getLogger(__name__)

# oVirt audit log types.
AUDIT_RUN, AUDIT_RUN_FAILED, AUDIT_STOP, AUDIT_ADD, AUDIT_REMOVE = 153, 54, 33, 34, 113


async def add_vm(ctx: Context, user: str, vm: Vm) -> Vm:
    check(refuse_new_vm(vm))
    created = Vm(**{**vm.__dict__, "id": str(uuid.uuid4()), "status": DOWN, "host_id": None})
    async with ctx.transaction() as repo:
        await repo.cluster(created.cluster_id)
        await repo.add_vm(created)
        await repo.audit(AUDIT_ADD, "normal", f"VM {created.name} was created.", user, created)
    return created


async def remove_vm(ctx: Context, user: str, vm_id: str) -> None:
    async with ctx.transaction() as repo:
        vm = await repo.vm(vm_id, lock=True)
        check(refuse_remove_vm(vm))
        await repo.remove_vm(vm.id)
        await repo.audit(AUDIT_REMOVE, "normal", f"VM {vm.name} was removed.", user, vm)


async def run_vm(ctx: Context, user: str, vm_id: str, host_id: str | None = None) -> Vm:
    async with ctx.failure_audited(user, AUDIT_RUN_FAILED, "run", vm_id) as seen, ctx.transaction() as repo:
        vm = seen.vm = await _as_its_host_has_it(ctx, repo, await repo.vm(vm_id, lock=True))
        check(refuse_start(vm))
        hosts = [await repo.host(host_id)] if host_id else await repo.hosts()
        candidates = [h for h in hosts if h.cluster_id == vm.cluster_id and h.status == "up"]
        if not candidates:
            raise EngineError(errors.NO_HOST, f"no host that is up in the cluster of VM {vm.name}")
        host = candidates[0]
        await repo.hold_profiles(vm.id)  # what the host applies for them holds still while it starts
        nics = await repo.nics(vm.id)
        disks = await repo.disks(vm.id)
        op = await ctx.journal.begin(repo, "start", host, vm, user)
        started = await op.call(ctx.hosts.start(host, vm, nics, disks))
        try:
            placed = {n.alias: n for n in started.nics}
            for nic in nics:
                reported = placed.get(alias_of(nic))
                if nic.plugged and reported:
                    await repo.set_device(nic.changed(alias=reported.alias, address=reported.address))
            await repo.set_vm_status(vm.id, UP, host.id)
            await repo.audit(AUDIT_RUN, "normal", f"VM {vm.name} started on host {host.name}.", user, vm)
        except Exception:
            # The database will say 'down': the host must not keep it running.
            try:
                await ctx.hosts.stop(host, vm)
            except EngineError as undo:
                log.error("VM %s stays running on host %s: %s", vm.name, host.name, undo.detail)
            else:
                await op.forget()
            raise
        await op.done()
        return await repo.vm(vm.id)


async def stop_vm(ctx: Context, user: str, vm_id: str) -> Vm:
    async with ctx.transaction() as repo:
        vm = await repo.vm(vm_id, lock=True)
        if vm.status == DOWN:
            return vm
        if vm.host_id:
            host = await repo.host(vm.host_id)
            op = await ctx.journal.begin(repo, "stop", host, vm, user)
            await op.call(ctx.hosts.stop(host, vm))
            await op.done()
        await repo.set_vm_status(vm.id, DOWN, None)
        await repo.audit(AUDIT_STOP, "normal", f"VM {vm.name} was stopped.", user, vm)
        # Read in the transaction: a removal queued behind this stop must not turn its answer into 404.
        return await repo.vm(vm.id)


async def _as_its_host_has_it(ctx: Context, repo: Repository, vm: Vm) -> Vm:
    """The VM as its host has it, when the database alone cannot be trusted: it says the VM runs
    (it may have been destroyed behind the engine's back), or an operation on it was interrupted."""
    interrupted = await repo.open_operations(vm.id)
    host_id = vm.host_id if vm.status != DOWN else next((op.host_id for op in interrupted), None)
    if host_id is None:
        return vm
    await follow_host(ctx, repo, await repo.host(host_id), vm)
    return await repo.vm(vm.id)
