"""The MAC pool: which ranges it may have, and picking MAC addresses from them (pure: the caller
supplies what is in use).

As oVirt's pool, allocation moves forward: a cursor (a database sequence, so concurrent adds never
wait for each other) walks the ranges one after another, skipping MACs that are taken (given by
hand, or in use from before the cursor existed); only once it has passed the end of the last
range are the gaps — MACs freed by removed NICs — handed out again, lowest first.

There is one pool, oVirt's Default one (``DEFAULT_POOL_ID``); an operator may rename it and replace
its ranges (``refuse_mac_pool`` says what it may become).  It never allows duplicates: a NIC's MAC
is unique among all NICs (a database constraint).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.limits import MAC_POOL_RANGES_MAX, MAC_RANGE_SIZE_MAX, Refusal, refuse_name
from engine.domain.model import MacPool
from shared_schema.errors import ParamError
from shared_schema.nic import parse_mac

# The one pool's id: oVirt's own for its Default pool (what its engine-setup and schema use).
DEFAULT_POOL_ID = "58ca604b-017d-0374-0220-00000000014e"

Range = tuple[str, str]  # (from, to), both included


def mac_to_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def int_to_mac(value: int) -> str:
    raw = f"{value:012x}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def free_macs(ranges: Iterable[tuple[str, str]], used: Iterable[str]) -> Iterator[str]:
    """Free unicast MACs of the ranges, lowest first."""
    taken = {mac_to_int(m) for m in used}
    for start, end in ranges:
        for value in range(mac_to_int(start), mac_to_int(end) + 1):
            if value not in taken and is_unicast(value):
                yield int_to_mac(value)


def is_unicast(value: int) -> bool:
    return not (value >> 40) & 1


def mac_at(ranges: Iterable[tuple[str, str]], offset: int) -> int | None:
    """The MAC (as an integer) ``offset`` places into the ranges taken one after another; None
    past their end."""
    for start, end in ranges:
        first, last = mac_to_int(start), mac_to_int(end)
        if offset <= last - first:
            return first + offset
        offset -= last - first + 1
    return None


def next_free(ranges: Iterable[tuple[str, str]], offset: int, used: Iterable[str]) -> int | None:
    """The offset of the first free unicast MAC at or after ``offset``; None when every MAC from
    there to the end of the ranges is taken."""
    taken = {mac_to_int(m) for m in used}
    base = 0
    for start, end in ranges:
        first, last = mac_to_int(start), mac_to_int(end)
        for value in range(first + max(0, offset - base), last + 1):
            if value not in taken and is_unicast(value):
                return base + value - first
        base += last - first + 1
    return None


# -- what the pool may become ----------------------------------------------------------------------


def refuse_mac_pool(pool: MacPool, allow_duplicates: bool | None = None, default_pool: bool | None = None) -> Refusal:
    """The pool as a change would leave it: its name and ranges, and the two flags that stay as they
    are here (no duplicates; the one pool is the default one)."""
    if allow_duplicates:
        return EngineError(
            errors.INVALID,
            "allow_duplicates: duplicate MAC addresses are not supported: a NIC's MAC is unique among all "
            "NICs (a database constraint), so the pool allows none; leave allow_duplicates false",
        )
    if default_pool is False:
        return EngineError(
            errors.INVALID, "default_pool: this engine has one MAC pool, the default one, and it stays the default"
        )
    return refuse_name("MAC pool", pool.name) or refuse_ranges(pool.ranges)


def refuse_ranges(ranges: Sequence[Range]) -> Refusal:
    """At least one range and at most MAC_POOL_RANGES_MAX; each of two valid unicast MACs, from <= to,
    not crossing into multicast MACs, at most MAC_RANGE_SIZE_MAX MACs; no two overlapping."""
    if not ranges:
        return _bad("a MAC pool needs at least one range: ranges.range [{from, to}, ...]")
    if len(ranges) > MAC_POOL_RANGES_MAX:
        return _bad(f"a MAC pool has at most {MAC_POOL_RANGES_MAX} ranges; got {len(ranges)}")
    spans: list[tuple[int, int, int]] = []  # (first, last, the range's number)
    for number, (start, end) in enumerate(ranges, 1):
        span = _span(number, start, end)
        if isinstance(span, EngineError):
            return span
        spans.append((*span, number))
    spans.sort()
    for (_, last, one), (first, _, other) in pairwise(spans):
        if first <= last:
            a, b = sorted((one, other))
            return _bad(
                f"ranges {a} ({_shown(ranges[a - 1])}) and {b} ({_shown(ranges[b - 1])}) overlap: "
                "a MAC would be in the pool twice"
            )
    return None


def range_size(start: str, end: str) -> int:
    return mac_to_int(end) - mac_to_int(start) + 1


def _span(number: int, start: str, end: str) -> tuple[int, int] | EngineError:
    try:
        first = mac_to_int(parse_mac(start, f"range {number} from"))
        last = mac_to_int(parse_mac(end, f"range {number} to"))
    except ParamError as exc:  # not a MAC, or a multicast one (the rule of shared_schema.nic)
        detail = exc.detail if len(exc.detail) <= 200 else exc.detail[:200] + "…"
        return EngineError(errors.INVALID_MAC, detail)
    what = f"range {number} ({_shown((start, end))})"
    if first > last:
        return _bad(f"{what}: from is after to; give the lower MAC as from")
    if first >> 40 != last >> 40:
        # Both ends are unicast (an even first octet), so an odd first octet lies between them.
        return _bad(
            f"{what} crosses into multicast MACs ({(first >> 40) + 1:02x}:...): a NIC needs a unicast MAC; "
            "keep each range within one first octet"
        )
    if last - first + 1 > MAC_RANGE_SIZE_MAX:
        return _bad(
            f"{what} holds {last - first + 1:,} MACs; a range holds at most {MAC_RANGE_SIZE_MAX:,} "
            "(one OUI's block): split it into several ranges"
        )
    return first, last


def _shown(r: Range) -> str:
    return f"{r[0].lower()}-{r[1].lower()}"


def _bad(detail: str) -> EngineError:
    return EngineError(errors.INVALID_MAC_RANGE, detail)
