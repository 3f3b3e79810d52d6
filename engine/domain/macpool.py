"""Pick MAC addresses from the pool's ranges (pure: the caller supplies what is in use)."""

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
