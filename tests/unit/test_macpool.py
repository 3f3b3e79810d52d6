"""MACs from the pool: a cursor forward through the ranges, then the lowest gaps, none when the pool is full."""

from __future__ import annotations

from itertools import islice

import pytest

from engine.domain.macpool import free_macs, int_to_mac, is_unicast, mac_at, mac_to_int, next_free

POOL = ("56:6f:1a:00:00:00", "56:6f:1a:00:00:0f")


def first(count: int, ranges: list[tuple[str, str]], used: list[str] | None = None) -> list[str]:
    return list(islice(free_macs(ranges, used or []), count))


def test_lowest_first() -> None:
    assert first(3, [POOL]) == ["56:6f:1a:00:00:00", "56:6f:1a:00:00:01", "56:6f:1a:00:00:02"]


def test_skips_used_macs() -> None:
    used = ["56:6f:1a:00:00:00", "56:6f:1a:00:00:02"]
    assert first(3, [POOL], used) == ["56:6f:1a:00:00:01", "56:6f:1a:00:00:03", "56:6f:1a:00:00:04"]


def test_used_macs_match_whatever_their_case() -> None:
    assert first(1, [POOL], ["56:6F:1A:00:00:00"]) == ["56:6f:1a:00:00:01"]


def test_used_macs_outside_the_ranges_change_nothing() -> None:
    assert first(2, [POOL], ["00:1a:4a:16:01:51"]) == ["56:6f:1a:00:00:00", "56:6f:1a:00:00:01"]


def test_both_ends_of_a_range_are_free_macs() -> None:
    macs = list(free_macs([POOL], []))
    assert len(macs) == 16
    assert (macs[0], macs[-1]) == POOL


def test_spans_several_ranges_in_order() -> None:
    ranges = [("56:6f:1a:00:00:00", "56:6f:1a:00:00:01"), ("56:6f:1a:00:10:00", "56:6f:1a:00:10:01")]
    assert list(free_macs(ranges, [])) == [
        "56:6f:1a:00:00:00",
        "56:6f:1a:00:00:01",
        "56:6f:1a:00:10:00",
        "56:6f:1a:00:10:01",
    ]


def test_moves_on_to_the_next_range_when_one_is_full() -> None:
    ranges = [("56:6f:1a:00:00:00", "56:6f:1a:00:00:01"), ("56:6f:1a:00:10:00", "56:6f:1a:00:10:01")]
    used = ["56:6f:1a:00:00:00", "56:6f:1a:00:00:01"]
    assert first(1, ranges, used) == ["56:6f:1a:00:10:00"]


@pytest.mark.parametrize(
    "ranges",
    [
        [("01:00:5e:00:00:00", "01:00:5e:00:00:ff")],
        [("fe:ff:ff:ff:ff:fe", "ff:00:00:00:00:03")],
        [("03:00:00:00:00:00", "03:00:00:00:00:07"), ("02:00:00:00:00:00", "02:00:00:00:00:01")],
    ],
    ids=["all multicast", "crossing into ff", "multicast range then unicast"],
)
def test_never_yields_a_multicast_mac(ranges: list[tuple[str, str]]) -> None:
    macs = list(free_macs(ranges, []))
    assert all(int(m[:2], 16) % 2 == 0 for m in macs), macs


def test_multicast_macs_are_skipped_not_the_whole_range() -> None:
    ranges = [("fe:ff:ff:ff:ff:fe", "ff:00:00:00:00:03")]
    assert list(free_macs(ranges, [])) == ["fe:ff:ff:ff:ff:fe", "fe:ff:ff:ff:ff:ff"]


def test_a_full_range_yields_nothing() -> None:
    used = [int_to_mac(v) for v in range(mac_to_int(POOL[0]), mac_to_int(POOL[1]) + 1)]
    assert list(free_macs([POOL], used)) == []


def test_no_ranges_yield_nothing() -> None:
    assert list(free_macs([], [])) == []


def test_is_lazy_over_a_large_range() -> None:
    assert first(1, [("00:1a:4a:00:00:00", "00:1a:4a:ff:ff:ff")]) == ["00:1a:4a:00:00:00"]


@pytest.mark.parametrize(
    ("mac", "value"),
    [
        ("00:00:00:00:00:00", 0),
        ("00:00:00:00:00:01", 1),
        ("00:00:00:00:01:00", 256),
        ("00:1a:4a:16:01:51", 0x001A4A160151),
        ("ff:ff:ff:ff:ff:ff", 2**48 - 1),
    ],
)
def test_mac_int_round_trip(mac: str, value: int) -> None:
    assert mac_to_int(mac) == value
    assert int_to_mac(value) == mac


def test_round_trip_normalises_to_lower_case() -> None:
    assert int_to_mac(mac_to_int("00:1A:4A:16:01:5B")) == "00:1a:4a:16:01:5b"


RANGES = [("00:1a:4a:00:00:00", "00:1a:4a:00:00:05"), ("00:1a:4b:00:00:00", "00:1a:4b:00:00:01")]


def test_the_cursor_walks_the_ranges_one_after_another() -> None:
    assert [int_to_mac(v) for v in (mac_at(RANGES, k) for k in range(8)) if v is not None] == [
        "00:1a:4a:00:00:00", "00:1a:4a:00:00:01", "00:1a:4a:00:00:02", "00:1a:4a:00:00:03",
        "00:1a:4a:00:00:04", "00:1a:4a:00:00:05", "00:1a:4b:00:00:00", "00:1a:4b:00:00:01",
    ]  # fmt: skip
    assert mac_at(RANGES, 8) is None  # past the end: the gaps come next
    assert mac_at([], 0) is None


def test_a_taken_mac_moves_the_cursor_to_the_next_free_one() -> None:
    used = ["00:1a:4a:00:00:03", "00:1a:4a:00:00:04", "00:1a:4a:00:00:05", "00:1A:4B:00:00:00"]
    assert next_free(RANGES, 3, used) == 7  # into the second range, past its used first MAC
    assert next_free(RANGES, 0, used) == 0
    assert next_free(RANGES, 7, [*used, "00:1a:4b:00:00:01"]) is None
    assert next_free(RANGES, 9, []) is None


def test_the_cursor_never_hands_out_a_multicast_mac() -> None:
    ranges = [("00:ff:ff:ff:ff:ff", "01:00:00:00:00:01")]
    value = mac_at(ranges, 1)
    assert value is not None and not is_unicast(value)
    assert next_free(ranges, 1, []) is None
    assert next_free(ranges, 0, []) == 0
