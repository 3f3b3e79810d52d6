"""The MAC pool: rename it, replace its ranges (oVirt's ``PUT /macpools/{id}``).

There is one pool, oVirt's Default (``engine/domain/macpool.py``), and no use case adds or removes
one.  Replacing the ranges restarts the allocation cursor at the first of the new ranges, in the
same transaction (``Repository.replace_mac_ranges``): the next NIC add takes the first free MAC of
the new ranges, moving past taken ones.  NICs whose MACs lie outside the new ranges keep them, as in
oVirt; such a MAC, once its NIC is removed, is simply not handed out again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.domain.errors import EngineError
from engine.domain.macpool import Range, range_size, refuse_mac_pool
from engine.domain.model import MacPool
from engine.domain.rules import check
from engine.services.context import Context

# oVirt's audit log types (MAC_POOL_EDIT_SUCCESS, MAC_POOL_EDIT_FAILED).
MAC_POOL_UPDATED, MAC_POOL_UPDATE_FAILED = 10702, 10703


@dataclass(frozen=True)
class MacPoolFields:
    """What a request may change; None leaves a field as it is.  ``ranges`` replaces them all."""

    name: str | None = None
    description: str | None = None
    allow_duplicates: bool | None = None  # false only: duplicates are not supported
    default_pool: bool | None = None  # true only: the one pool is the default one
    ranges: tuple[Range, ...] | None = None


async def update_mac_pool(ctx: Context, user: str, pool_id: str, fields: MacPoolFields) -> MacPool:
    seen = pool_id
    try:
        async with ctx.transaction() as repo:
            old = await repo.mac_pool(pool_id, lock=True)
            seen = old.name
            new = replace(
                old,
                name=old.name if fields.name is None else fields.name,
                description=old.description if fields.description is None else fields.description,
                ranges=old.ranges if fields.ranges is None else fields.ranges,
            )
            check(refuse_mac_pool(new, fields.allow_duplicates, fields.default_pool))
            new = replace(new, ranges=tuple((first.lower(), last.lower()) for first, last in new.ranges))
            if new == old:
                return old
            if (new.name, new.description) != (old.name, old.description):
                await repo.set_mac_pool(new.name, new.description)
            if new.ranges != old.ranges:
                await repo.replace_mac_ranges(new.ranges)
            await repo.audit(MAC_POOL_UPDATED, "normal", _updated(old, new), user)
    except EngineError as exc:
        # In a transaction of its own: the change rolled back.
        await ctx.audit(MAC_POOL_UPDATE_FAILED, "error", f"Failed to update MAC pool {seen}: {exc.detail}", user)
        raise
    return new


def _updated(old: MacPool, new: MacPool) -> str:
    message = f"MAC pool {new.name} was updated."
    if new.name != old.name:
        message += f" It was named {old.name}."
    if new.ranges != old.ranges:
        ranges = ", ".join(f"{first}-{last} ({range_size(first, last):,} MACs)" for first, last in new.ranges)
        message += f" Its ranges are now {ranges}; new NICs take the first free MAC of these."
    return message
