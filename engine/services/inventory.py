"""Data centers, clusters, hosts and networks: what the NIC flows stand on (oVirt's object model:
a cluster belongs to a data center; a network belongs to a data center and is attached to some
of its clusters)."""

from __future__ import annotations

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.limits import (
    PORT_MAX,
    PORT_MIN,
    VERSION_MAX,
    VERSION_MIN,
    refuse_host_address,
    refuse_name,
    refuse_range,
    shown,
)
from engine.domain.model import Cluster, DataCenter, Host, Network, Version, VnicProfile
from engine.domain.rules import check, refuse_attach
from engine.services.context import Context
from shared_schema.errors import ParamError
from shared_schema.nic import DEVICE_NAME_RULE, parse_device_name

DEFAULT_DATA_CENTER = "Default"


async def add_data_center(ctx: Context, name: str, description: str = "") -> DataCenter:
    check(refuse_name("data center", name))
    async with ctx.transaction() as repo:
        return await repo.add_data_center(name, description)


async def add_cluster(
    ctx: Context, name: str, version: Version, description: str = "", data_center_id: str | None = None
) -> Cluster:
    """A cluster in the data center given, else in the one named 'Default' (made when missing)."""
    check(refuse_name("cluster", name))
    check(refuse_range("version.major", version.major, VERSION_MIN, VERSION_MAX))
    check(refuse_range("version.minor", version.minor, VERSION_MIN, VERSION_MAX))
    async with ctx.transaction() as repo:
        if data_center_id is not None:
            dc = await repo.data_center(data_center_id)
        else:
            dc = await repo.data_center_named(DEFAULT_DATA_CENTER) or await repo.add_data_center(DEFAULT_DATA_CENTER)
        return await repo.add_cluster(name, version, description, dc.id)


async def add_host(ctx: Context, name: str, cluster_id: str, address: str, port: int) -> Host:
    """Register a host; it is 'up' when its agent answers, else 'non_responsive'."""
    check(refuse_name("host", name))
    check(refuse_host_address(address))
    check(refuse_range("port", port, PORT_MIN, PORT_MAX))
    async with ctx.transaction() as repo:
        await repo.cluster(cluster_id)
        host = await repo.add_host(name, cluster_id, address, port)
        if not await ctx.hosts.answers(host):
            return await repo.set_host_status(host, "non_responsive")
        return host


def _bridge_for(name: str, bridge: str) -> str:
    """As in VDSM, a VM network's bridge is named after the network unless one is given, so
    the network's name must then be a valid device name."""
    try:
        return parse_device_name(bridge, "bridge") if bridge else parse_device_name(name, "name")
    except ParamError:
        if bridge:
            why = f"bridge {shown(bridge)} is not a valid network device name ({DEVICE_NAME_RULE})"
        else:
            why = (
                f"network {name!r} has no bridge, and its name cannot be the bridge's: a bridge name must be "
                f"{DEVICE_NAME_RULE}. Give a shorter name, or name the bridge with 'bridge'"
            )
        raise EngineError(errors.INVALID, why) from None


async def add_network(
    ctx: Context, name: str, *, data_center_id: str | None = None, cluster_id: str | None = None, bridge: str = ""
) -> tuple[Network, VnicProfile]:
    """A VM network of a data center, with its default vNIC profile.  Given a cluster (the seed's
    way), the network goes to that cluster's data center and is attached to the cluster."""
    check(refuse_name("network", name))
    bridge = _bridge_for(name, bridge)
    async with ctx.transaction() as repo:
        dc = await repo.data_center(data_center_id) if data_center_id is not None else None
        if cluster_id is not None:
            cluster = await repo.cluster(cluster_id)
            if dc is not None and dc.id != cluster.data_center_id:
                raise EngineError(errors.INVALID, f"cluster {cluster.name} is not in data center {dc.name}")
            return await repo.add_network(name, cluster.data_center_id, bridge, cluster.id)
        if dc is None:
            raise EngineError(errors.INVALID, "a network needs a data_center (or a cluster to attach it to)")
        return await repo.add_network(name, dc.id, bridge, None)


async def attach_network(ctx: Context, cluster_id: str, network_id: str) -> Network:
    """Attach a network of the cluster's data center to the cluster: its VMs may then use it."""
    async with ctx.transaction() as repo:
        cluster = await repo.cluster(cluster_id)
        network = await repo.network(network_id)
        check(refuse_attach(cluster, network))
        await repo.attach_network(cluster.id, network.id)
        return await repo.network(network.id)
