"""The engine hands the C heap's free memory back to the system (engine/heap.py)."""

from __future__ import annotations

from pathlib import Path

from engine import heap


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_freed_in_the_middle_of_the_heap_goes_back_to_the_system() -> None:
    # A burst of 100 MB, every 50th piece kept: the heap cannot shrink from its top by itself.
    kept, freed = [], []
    for i in range(50_000):
        (kept if i % 50 == 0 else freed).append(bytes(2000))
    del freed
    before = _rss_mib()
    assert heap.trim()  # glibc, as on the hosts this runs on
    assert before - _rss_mib() > 50, "the freed 98 MB stayed in the process"
    assert len(kept) == 1000
