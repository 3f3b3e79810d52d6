"""Pick MAC addresses from the pool's ranges (pure: the caller supplies what is in use).

As oVirt's pool, allocation moves forward: a cursor (a database sequence, so concurrent adds never
wait for each other) walks the ranges one after another, skipping MACs that are taken (given by
hand, or in use from before the cursor existed); only once it has passed the end of the last
range are the gaps — MACs freed by removed NICs — handed out again, lowest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


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
