"""vNIC profiles and network QoS: add, update, remove (oVirt's /vnicprofiles, /networks/{id}/vnicprofiles
and /datacenters/{id}/qoss).

A profile is what a NIC's host applies besides the bridge: port mirroring, a QoS, SR-IOV
pass-through.  A change of any of these under a NIC plugged into a running VM would leave the host
applying something else than the engine says, so it is refused (``rules.refuse_profile_change``,
``refuse_qos_change``).  Each change holds the profile's row lock (a QoS change, those of the
profiles using it) while it checks who uses it; a plug or a start holds the same rows shared until
it has stored what the host did, so the two never cross.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from engine.adapters.repository import Repository
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import NetworkQos, QosRate, VnicProfile
from engine.domain.rules import (
    check,
    refuse_profile,
    refuse_profile_change,
    refuse_qos,
    refuse_qos_change,
    refuse_remove_profile,
    refuse_remove_qos,
)
from engine.services.context import Context

# oVirt's audit log types.
PROFILE_ADDED, PROFILE_ADD_FAILED, PROFILE_UPDATED, PROFILE_UPDATE_FAILED = 1122, 1123, 1124, 1125
PROFILE_REMOVED, PROFILE_REMOVE_FAILED = 1126, 1127
QOS_ADDED, QOS_ADD_FAILED, QOS_REMOVED, QOS_REMOVE_FAILED, QOS_UPDATED, QOS_UPDATE_FAILED = (
    10110, 10111, 10112, 10113, 10114, 10115,
)  # fmt: skip
NO_QOS = ""  # ProfileFields.qos_id: take the profile's QoS off


@dataclass(frozen=True)
class ProfileFields:
    """What a caller may set on a profile; None leaves a field as it is (or takes the default)."""

    name: str | None = None
    description: str | None = None
    network_id: str | None = None
    port_mirroring: bool | None = None
    pass_through: bool | None = None
    qos_id: str | None = None  # NO_QOS: none


@dataclass(frozen=True)
class QosFields:
    """A network QoS as a request gives it: oVirt's six rates (Mbps, MB); None is "not given"."""

    name: str | None = None
    description: str | None = None
    type: str | None = None
    inbound_average: int | None = None
    inbound_peak: int | None = None
    inbound_burst: int | None = None
    outbound_average: int | None = None
    outbound_peak: int | None = None
    outbound_burst: int | None = None

    def rate(self, direction: str, before: QosRate | None) -> QosRate | None:
        """One direction: all three values, or none (oVirt's rule); what is not given stays."""
        given = [getattr(self, f"{direction}_{part}") for part in ("average", "peak", "burst")]
        if all(v is None for v in given):
            return before
        if any(v is None for v in given) and before is None:
            raise EngineError(
                errors.INVALID,
                f"{direction}: give {direction}_average, {direction}_peak and {direction}_burst together (or none)",
            )
        old = [before.average, before.peak, before.burst] if before else [0, 0, 0]
        average, peak, burst = (v if v is not None else o for v, o in zip(given, old, strict=True))
        return QosRate(average, peak, burst)


@asynccontextmanager
async def _audited(
    ctx: Context, user: str, failed: int, what: str, name: Callable[[], str]
) -> AsyncIterator[Repository]:
    """The change in one transaction; a refusal is audited in a transaction of its own."""
    try:
        async with ctx.transaction() as repo:
            yield repo
    except EngineError as exc:
        await ctx.audit(failed, "error", f"Failed to {what} {name()}: {exc.detail}", user)
        raise


# -- vNIC profiles ----------------------------------------------------------------------------------


async def add_profile(ctx: Context, user: str, fields: ProfileFields) -> VnicProfile:
    name = fields.name or ""
    async with _audited(ctx, user, PROFILE_ADD_FAILED, "add vNIC profile", lambda: name) as repo:
        if not fields.network_id:
            raise EngineError(errors.INVALID, "a vNIC profile needs a network (network.id)")
        network = await repo.network(fields.network_id)
        # A QoS of the network's data center (404 for any other), by its id as stored.
        qos = await repo.qos(network.data_center_id, fields.qos_id) if fields.qos_id else None
        profile = VnicProfile(
            id=str(uuid.uuid4()), name=name, network_id=network.id, port_mirroring=bool(fields.port_mirroring),
            description=fields.description or "", pass_through=bool(fields.pass_through),
            qos_id=qos.id if qos else None, data_center_id=network.data_center_id,
        )  # fmt: skip
        check(refuse_profile(profile))
        await repo.add_profile(profile)
        await repo.audit(PROFILE_ADDED, "normal", f"vNIC profile {name} was added to network {network.name}.", user)
    return profile


async def update_profile(ctx: Context, user: str, profile_id: str, fields: ProfileFields) -> VnicProfile:
    seen = profile_id
    async with _audited(ctx, user, PROFILE_UPDATE_FAILED, "update vNIC profile", lambda: seen) as repo:
        old = await repo.profile(profile_id, lock="UPDATE")
        seen = old.name
        qos_id = old.qos_id if fields.qos_id is None else fields.qos_id or None
        if qos_id and qos_id != old.qos_id:
            qos_id = (await repo.qos(old.data_center_id, qos_id)).id  # one of the network's data center
        new = replace(
            old,
            name=old.name if fields.name is None else fields.name,
            description=old.description if fields.description is None else fields.description,
            network_id=fields.network_id or old.network_id,
            port_mirroring=old.port_mirroring if fields.port_mirroring is None else fields.port_mirroring,
            pass_through=old.pass_through if fields.pass_through is None else fields.pass_through,
            qos_id=qos_id,
        )
        if new == old:
            return old
        check(refuse_profile_change(old, new, await repo.profile_users(profile_id=old.id)))
        await repo.update_profile(new)
        await repo.audit(PROFILE_UPDATED, "normal", f"vNIC profile {new.name} was updated.", user)
    return new


async def remove_profile(ctx: Context, user: str, profile_id: str, network_id: str | None = None) -> None:
    """Remove a profile that no NIC uses; ``network_id``: the network whose profile it must be."""
    seen = profile_id
    async with _audited(ctx, user, PROFILE_REMOVE_FAILED, "remove vNIC profile", lambda: seen) as repo:
        profile = await repo.profile(profile_id, lock="UPDATE")
        if network_id is not None and profile.network_id != network_id:
            raise EngineError(errors.PROFILE_NOT_FOUND, f"network has no vNIC profile with id {profile_id}")
        seen = profile.name
        check(refuse_remove_profile(profile, await repo.profile_users(profile_id=profile.id)))
        await repo.delete_profile(profile.id)
        await repo.audit(PROFILE_REMOVED, "normal", f"vNIC profile {profile.name} was removed.", user)


# -- network QoS --------------------------------------------------------------------------------------


async def add_qos(ctx: Context, user: str, data_center_id: str, fields: QosFields) -> NetworkQos:
    name = fields.name or ""
    async with _audited(ctx, user, QOS_ADD_FAILED, "add QoS", lambda: name) as repo:
        if fields.type != "network":
            raise EngineError(
                errors.INVALID, f"type must be network (the QoS of vNIC profiles), got {fields.type or 'none'}"
            )
        dc = await repo.data_center(data_center_id)
        qos = NetworkQos(
            str(uuid.uuid4()), name, dc.id, fields.description or "",
            fields.rate("inbound", None), fields.rate("outbound", None),
        )  # fmt: skip
        check(refuse_qos(qos))
        await repo.add_qos(qos)
        await repo.audit(QOS_ADDED, "normal", f"Network QoS {name} was added to data center {dc.name}.", user)
    return qos


async def update_qos(ctx: Context, user: str, data_center_id: str, qos_id: str, fields: QosFields) -> NetworkQos:
    seen = qos_id
    async with _audited(ctx, user, QOS_UPDATE_FAILED, "update QoS", lambda: seen) as repo:
        dc = await repo.data_center(data_center_id)
        await repo.qos_profiles(_key(qos_id), lock=True)  # plugs and starts of their NICs wait, or are waited for
        old = await repo.qos(dc.id, qos_id, lock=True)
        seen = old.name
        if fields.type not in (None, "network"):
            raise EngineError(errors.INVALID, f"the type of QoS {old.name} is network and cannot change")
        new = replace(
            old,
            name=old.name if fields.name is None else fields.name,
            description=old.description if fields.description is None else fields.description,
            inbound=fields.rate("inbound", old.inbound),
            outbound=fields.rate("outbound", old.outbound),
        )
        if new == old:
            return old
        check(refuse_qos_change(old, new, await repo.profile_users(qos_id=old.id)))
        await repo.update_qos(new)
        await repo.audit(QOS_UPDATED, "normal", f"Network QoS {new.name} was updated.", user)
    return new


async def remove_qos(ctx: Context, user: str, data_center_id: str, qos_id: str) -> None:
    seen = qos_id
    async with _audited(ctx, user, QOS_REMOVE_FAILED, "remove QoS", lambda: seen) as repo:
        dc = await repo.data_center(data_center_id)
        qos = await repo.qos(dc.id, qos_id, lock=True)
        seen = qos.name
        check(refuse_remove_qos(qos, await repo.qos_profiles(qos.id, lock=True)))
        await repo.delete_qos(qos.id)
        await repo.audit(QOS_REMOVED, "normal", f"Network QoS {qos.name} was removed.", user)


def _key(qos_id: str) -> str:
    try:
        return str(uuid.UUID(qos_id))
    except ValueError:
        raise EngineError(errors.QOS_NOT_FOUND, f"data center has no QoS with id {qos_id}") from None
