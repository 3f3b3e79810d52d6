"""Pick MAC addresses from the pool's ranges (pure: the caller supplies what is in use).

As oVirt's pool, allocation moves forward: the MACs after the highest one in use in each range
come first (found through the MAC index, whatever the number of NICs), and only when a range is
used up to its end are its gaps — MACs freed by removed NICs — handed out again, lowest first.
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
            if value not in taken and not (value >> 40) & 1:  # skip multicast
                yield int_to_mac(value)


def after_highest(ranges: Iterable[tuple[str, str]], highest: Iterable[str | None], count: int = 4) -> Iterator[str]:
    """Up to ``count`` unicast MACs of each range after its highest MAC in use (from its start when
    none is), in range order; ``highest`` gives each range's highest used MAC, or None."""
    for (start, end), top in zip(ranges, highest, strict=True):
        first = mac_to_int(start) if top is None else mac_to_int(top) + 1
        found = 0
        for value in range(first, mac_to_int(end) + 1):
            if found == count:
                break
            if not (value >> 40) & 1:  # skip multicast
                found += 1
                yield int_to_mac(value)
