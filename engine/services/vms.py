"""VM use cases: add, remove, run (only the plugged NICs go to the host), stop."""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from engine.adapters.agent_client import AgentError, HostUnreachable
from engine.domain import errors, rules
from engine.domain.errors import EngineError
from engine.domain.model import DOWN, UP, Host, Nic, Vm
from engine.services.context import Context
from engine.services.hosts_calls import alias_of, vm_spec
from shared_schema import errors as wire
from shared_schema.errors import ParamError
from shared_schema.nic import PciAddress
from shared_schema.vm import check_vm_name

log = logging.getLogger(__name__)

# oVirt audit log types.
AUDIT_RUN, AUDIT_RUN_FAILED, AUDIT_STOP, AUDIT_ADD, AUDIT_REMOVE = 153, 54, 33, 34, 113


async def add_vm(ctx: Context, user: str, vm: Vm) -> Vm:
    rules.os_type_known(vm.os_type)
    try:
        check_vm_name(vm.name)
    except ParamError as exc:
        raise EngineError(errors.INVALID, f"VM name {exc.detail.removeprefix('vmName: ')}") from None
    if vm.memory_bytes < 16 * 1024 * 1024:
        raise EngineError(errors.INVALID, f"memory must be at least 16 MiB, got {vm.memory_bytes} bytes")
    created = Vm(**{**vm.__dict__, "id": str(uuid.uuid4()), "status": DOWN, "host_id": None})
    async with ctx.transaction() as repo:
        await repo.cluster(created.cluster_id)
        await repo.add_vm(created)
        await repo.audit(AUDIT_ADD, "normal", f"VM {created.name} was created.", user, created)
    return created


async def remove_vm(ctx: Context, user: str, vm_id: str) -> None:
    async with ctx.transaction() as repo:
        vm = await repo.vm(vm_id, lock=True)
        if vm.status != DOWN:
            raise EngineError(errors.VM_STATUS_ILLEGAL, f"VM {vm.name} is {vm.status}; stop it before removing it")
        await repo.remove_vm(vm.id)
        await repo.audit(AUDIT_REMOVE, "normal", f"VM {vm.name} was removed.", user, vm)


async def run_vm(ctx: Context, user: str, vm_id: str, host_id: str | None = None) -> Vm:
    async with ctx.failure_audited(user, AUDIT_RUN_FAILED, "run", vm_id) as seen, ctx.transaction() as repo:
        vm = seen.vm = await repo.vm(vm_id, lock=True)
        if vm.status != DOWN:
            raise EngineError(errors.VM_STATUS_ILLEGAL, f"VM {vm.name} is {vm.status}, not down")
        hosts = [await repo.host(host_id)] if host_id else await repo.hosts()
        candidates = [h for h in hosts if h.cluster_id == vm.cluster_id and h.status == "up"]
        if not candidates:
            raise EngineError(errors.NO_HOST, f"no host that is up in the cluster of VM {vm.name}")
        host = candidates[0]
        nics = await repo.nics(vm.id)
        started = await _create_on_host(ctx, host, vm, nics)
        try:
            placed = {n["alias"]: n for n in started.get("nics", [])}
            for nic in nics:
                reported = placed.get(alias_of(nic))
                if nic.plugged and reported:
                    address = PciAddress.parse(reported["address"]) if reported.get("address") else None
                    await repo.set_device(nic.changed(alias=reported["alias"], address=address))
        except Exception:
            # The database will say 'down': the host must not keep it running.
            with contextlib.suppress(HostUnreachable, AgentError):
                await ctx.agents.call(host, "VM.destroy", vmId=vm.id)
            raise
        await repo.set_vm_status(vm.id, UP, host.id)
        await repo.audit(AUDIT_RUN, "normal", f"VM {vm.name} started on host {host.name}.", user, vm)
    return await _reload(ctx, vm.id)


async def _create_on_host(ctx: Context, host: Host, vm: Vm, nics: list[Nic]) -> dict[str, Any]:
    """VM.create with only the activated NICs.  A domain the host still runs although the
    database says the VM is down (a start whose answer was lost) is replaced, once."""
    try:
        result: dict[str, Any] = await ctx.call_host(host, errors.RUN_VM_FAILED, "VM.create", **vm_spec(vm, nics))
        return result
    except EngineError as exc:
        if exc.data.get("hostCode") != wire.VM_EXISTS.code:
            raise
    log.warning("VM %s was still running on host %s although it was down here; restarting it", vm.name, host.name)
    await ctx.call_host(host, errors.RUN_VM_FAILED, "VM.destroy", vmId=vm.id)
    result = await ctx.call_host(host, errors.RUN_VM_FAILED, "VM.create", **vm_spec(vm, nics))
    return result


async def stop_vm(ctx: Context, user: str, vm_id: str) -> Vm:
    async with ctx.transaction() as repo:
        vm = await repo.vm(vm_id, lock=True)
        if vm.status == DOWN:
            return vm
        if vm.host_id:
            host = await repo.host(vm.host_id)
            try:
                await ctx.call_host(host, errors.STOP_VM_FAILED, "VM.destroy", vmId=vm.id)
            except EngineError as exc:
                if exc.data.get("hostCode") != wire.NO_VM.code:
                    raise
                log.warning("VM %s was not running on host %s any more", vm.name, host.name)
        await repo.set_vm_status(vm.id, DOWN, None)
        await repo.audit(AUDIT_STOP, "normal", f"VM {vm.name} was stopped.", user, vm)
    return await _reload(ctx, vm.id)


async def _reload(ctx: Context, vm_id: str) -> Vm:
    async with ctx.transaction() as repo:
        return await repo.vm(vm_id)
