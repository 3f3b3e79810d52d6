"""Clusters, hosts and networks: what the NIC flows stand on."""

from __future__ import annotations

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import Cluster, Host, Network, Version, VnicProfile
from engine.services.context import Context
from shared_schema.errors import ParamError
from shared_schema.nic import DEVICE_NAME_RULE, parse_device_name


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
        if not await ctx.hosts.answers(host):
            return await repo.set_host_status(host, "non_responsive")
        return host


async def add_network(ctx: Context, name: str, cluster_id: str, bridge: str = "") -> tuple[Network, VnicProfile]:
    """A VM network on a host bridge.  As in VDSM, the bridge is named after the network unless
    one is given, so the network's name must then be a valid device name."""
    if not name:
        raise EngineError(errors.INVALID, "a network needs a name")
    try:
        if bridge:
            parse_device_name(bridge, "bridge")
        else:
            bridge = parse_device_name(name, "name")
    except ParamError:
        if bridge:
            why = f"bridge {bridge!r} is not a valid network device name ({DEVICE_NAME_RULE})"
        else:
            why = (
                f"network {name!r} has no bridge, and its name cannot be the bridge's: a bridge name must be "
                f"{DEVICE_NAME_RULE}. Give a shorter name, or name the bridge with 'bridge'"
            )
        raise EngineError(errors.INVALID, why) from None
    async with ctx.transaction() as repo:
        await repo.cluster(cluster_id)
        return await repo.add_network(name, cluster_id, bridge)
