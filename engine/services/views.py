"""The read side: what the API shows, as query functions (cosmicpython's ``views.py``).

Each function runs its queries in one read transaction and returns domain values, or views
that pair a VM or NIC with the actions the engine would refuse now and why
(``disabled_actions``, from the same rule functions the use cases enforce).  Handlers call one
of these and render the answer; they never open transactions themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.adapters.repository import (
    DATA_CENTER_FIELDS,
    HOST_FIELDS,
    NAMED_FIELDS,
    VM_FIELDS,
    Repository,
)
from engine.domain import errors, search
from engine.domain.errors import EngineError
from engine.domain.macpool import DEFAULT_POOL_ID
from engine.domain.model import (
    AuditEntry,
    Cluster,
    DataCenter,
    Disk,
    Host,
    MacPool,
    Network,
    NetworkQos,
    Nic,
    Vm,
    VnicProfile,
)
from engine.domain.rules import nic_action_refusals, vm_action_refusals
from engine.domain.search import Search
from engine.services.context import Context
from shared_schema.answers import PlacedNic

T = TypeVar("T")
NIC_ACTIONS = ("activate", "deactivate", "edit", "edit_link", "remove")
VM_ACTIONS = ("start", "stop", "remove", "add_nic")


@dataclass(frozen=True)
class Caller:
    """Who is asking: a user and the role their token carries."""

    user: str
    role: str  # "admin" may change things; "readonly" may only read

    @property
    def may_change(self) -> bool:
        return self.role == "admin"

    def refusals(self, actions: tuple[str, ...]) -> dict[str, str] | None:
        """Every action refused, when this caller may only read; else None."""
        if self.may_change:
            return None
        return {action: f"user {self.user} may only read" for action in actions}


@dataclass(frozen=True)
class VmView:
    vm: Vm
    disabled: dict[str, str]
    unmanaged: tuple[PlacedNic, ...] = ()  # NICs its host reports that the engine does not manage


@dataclass(frozen=True)
class NicView:
    nic: Nic
    disabled: dict[str, str]


async def _read(ctx: Context, query: Callable[[Repository], Awaitable[T]]) -> T:
    async with ctx.transaction() as repo:
        return await query(repo)


@dataclass(frozen=True)
class ListQuery:
    """What a list request asks: oVirt's ``search`` and ``max`` query parameters, as sent."""

    search: str | None = None
    max: str | None = None


def _search(query: ListQuery | None, collection: str, fields: dict[str, str]) -> Search:
    query = query or ListQuery()
    return search.parse(query.search, collection=collection, fields=tuple(fields), max_results=query.max)


async def data_centers(ctx: Context, asked: ListQuery | None = None) -> list[DataCenter]:
    query = _search(asked, "data centers", DATA_CENTER_FIELDS)
    return await _read(ctx, lambda repo: repo.data_centers(query))


async def data_center(ctx: Context, dc_id: str) -> DataCenter:
    return await _read(ctx, lambda repo: repo.data_center(dc_id))


async def data_center_clusters(ctx: Context, dc_id: str) -> list[Cluster]:
    async with ctx.transaction() as repo:
        return await repo.clusters(data_center_id=(await repo.data_center(dc_id)).id)


async def data_center_networks(ctx: Context, dc_id: str) -> list[Network]:
    async with ctx.transaction() as repo:
        return await repo.networks(data_center_id=(await repo.data_center(dc_id)).id)


async def clusters(ctx: Context, asked: ListQuery | None = None) -> list[Cluster]:
    query = _search(asked, "clusters", NAMED_FIELDS)
    return await _read(ctx, lambda repo: repo.clusters(query))


async def cluster(ctx: Context, cluster_id: str) -> Cluster:
    return await _read(ctx, lambda repo: repo.cluster(cluster_id))


async def cluster_networks(ctx: Context, cluster_id: str) -> list[Network]:
    """The networks attached to the cluster: those its VMs' NICs may use."""
    async with ctx.transaction() as repo:
        return await repo.networks(cluster_id=(await repo.cluster(cluster_id)).id)


async def hosts(ctx: Context, asked: ListQuery | None = None) -> list[Host]:
    query = _search(asked, "hosts", HOST_FIELDS)
    return await _read(ctx, lambda repo: repo.hosts(query))


async def host(ctx: Context, host_id: str) -> Host:
    return await _read(ctx, lambda repo: repo.host(host_id))


async def networks(ctx: Context, asked: ListQuery | None = None) -> list[Network]:
    query = _search(asked, "networks", NAMED_FIELDS)
    return await _read(ctx, lambda repo: repo.networks(query))


async def network(ctx: Context, network_id: str) -> Network:
    return await _read(ctx, lambda repo: repo.network(network_id))


async def profiles(ctx: Context, asked: ListQuery | None = None, network_id: str | None = None) -> list[VnicProfile]:
    query = _search(asked, "vNIC profiles", NAMED_FIELDS)
    async with ctx.transaction() as repo:
        if network_id is not None:
            network_id = (await repo.network(network_id)).id
        return await repo.profiles(query, network_id=network_id)


async def profile(ctx: Context, profile_id: str, network_id: str | None = None) -> VnicProfile:
    """The profile (``network_id``: 404 unless it is that network's)."""
    async with ctx.transaction() as repo:
        found = await repo.profile(profile_id)
        if network_id is not None and found.network_id != (await repo.network(network_id)).id:
            raise EngineError(errors.PROFILE_NOT_FOUND, f"network has no vNIC profile with id {profile_id}")
        return found


async def qoss(ctx: Context, dc_id: str) -> list[NetworkQos]:
    async with ctx.transaction() as repo:
        return await repo.qoss((await repo.data_center(dc_id)).id)


async def qos(ctx: Context, dc_id: str, qos_id: str) -> NetworkQos:
    async with ctx.transaction() as repo:
        return await repo.qos((await repo.data_center(dc_id)).id, qos_id)


async def mac_pools(ctx: Context) -> list[MacPool]:
    """The MAC pools: one here, oVirt's Default pool."""
    return [await mac_pool(ctx, DEFAULT_POOL_ID)]


async def mac_pool(ctx: Context, pool_id: str) -> MacPool:
    return await _read(ctx, lambda repo: repo.mac_pool(pool_id))


async def disks(ctx: Context, vm_id: str, disk_id: str | None = None) -> list[Disk]:
    """The VM's disks (or the one ``disk_id`` names; 404 when it has no such disk)."""
    async with ctx.transaction() as repo:
        found = await repo.vm(vm_id)
        return [await repo.disk(found.id, disk_id)] if disk_id else await repo.disks(found.id)


async def events(ctx: Context, vm_id: str | None = None) -> list[AuditEntry]:
    return await _read(ctx, lambda repo: repo.audit_entries(vm_id))


async def _vm_views(repo: Repository, caller: Caller, found: list[Vm]) -> list[VmView]:
    unmanaged = await repo.unmanaged_nics([vm.id for vm in found])
    return [
        VmView(vm, caller.refusals(VM_ACTIONS) or vm_action_refusals(vm), tuple(unmanaged.get(vm.id, ())))
        for vm in found
    ]


async def vms(ctx: Context, caller: Caller, asked: ListQuery | None = None) -> list[VmView]:
    query = _search(asked, "VMs", VM_FIELDS)
    async with ctx.transaction() as repo:
        return await _vm_views(repo, caller, await repo.vms(query))


async def vm(ctx: Context, caller: Caller, vm_id: str) -> VmView:
    async with ctx.transaction() as repo:
        (view,) = await _vm_views(repo, caller, [await repo.vm(vm_id)])
        return view


async def nics(ctx: Context, caller: Caller, vm_id: str, nic_id: str | None = None) -> list[NicView]:
    """The VM's NICs (or the one ``nic_id`` names; 404 when it has no such NIC)."""
    async with ctx.transaction() as repo:
        found = await repo.vm(vm_id)
        wanted = [await repo.nic(found.id, nic_id)] if nic_id else await repo.nics(found.id)
        site = await repo.site(found)
    return [NicView(n, caller.refusals(NIC_ACTIONS) or nic_action_refusals(found, n, site)) for n in wanted]


async def database_version(ctx: Context) -> str:
    """The PostgreSQL server's version: the engine's health check reads it."""
    return await _read(ctx, lambda repo: repo.server_version())
