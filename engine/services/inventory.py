"""Clusters, hosts and networks: what the NIC flows stand on."""

from __future__ import annotations

import re

from engine.adapters.agent_client import AgentError, HostUnreachable
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import Cluster, Host, Network, Version, VnicProfile
from engine.services.context import Context

_BRIDGE = re.compile(r"[A-Za-z0-9_.-]{1,15}")


async def add_cluster(ctx: Context, name: str, version: Version, description: str = "") -> Cluster:
    if not name:
        raise EngineError(errors.INVALID, "a cluster needs a name")
    async with ctx.transaction() as repo:
        return await repo.add_cluster(name, version, description)


async def add_host(ctx: Context, name: str, cluster_id: str, address: str, port: int) -> Host:
    """Register a host; it is 'up' when its agent answers, else 'non_responsive'."""
    if not name or not address:
        raise EngineError(errors.INVALID, "a host needs a name and an address")
    if not 0 < port < 65536:
        raise EngineError(errors.INVALID, f"port must be 1-65535, got {port}")
    async with ctx.transaction() as repo:
        await repo.cluster(cluster_id)
        host = await repo.add_host(name, cluster_id, address, port)
        try:
            await ctx.agents.call(host, "Host.ping")
        except (HostUnreachable, AgentError):
            return await repo.set_host_status(host, "non_responsive")
        return host


async def add_network(ctx: Context, name: str, cluster_id: str, bridge: str) -> tuple[Network, VnicProfile]:
    if not name:
        raise EngineError(errors.INVALID, "a network needs a name")
    if not _BRIDGE.fullmatch(bridge):
        raise EngineError(
            errors.INVALID, f"bridge must be a network device name (1-15 of A-Z a-z 0-9 _ . -), got {bridge!r}"
        )
    async with ctx.transaction() as repo:
        await repo.cluster(cluster_id)
        return await repo.add_network(name, cluster_id, bridge)
