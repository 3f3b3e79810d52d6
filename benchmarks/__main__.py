"""``make bench``: every speed and memory figure, measured in one run, printed as one table
(figure, target, measured, verdict) and kept in docs/performance.md with the machine it ran on.

    python -m benchmarks [--quick] [--no-doc] [--hosts N] [--vms N]

--quick runs each part small (a minute or two; for trying a change), and leaves the docs alone;
--hosts and --vms size the scale part (1,000 and 10,000 by default, as issue 14 asks).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from pathlib import Path

from benchmarks import agent_scale, latency, scale, throughput
from benchmarks.table import Figure, render

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"


def _machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())  # fmt: skip
    system = f"Linux {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB, {system}"


async def measure(quick: bool, hosts: int, vms: int) -> list[Figure]:
    figures: list[Figure] = []
    parts = [
        ("latency", lambda: latency.run(cycles=5 if quick else 20)),
        ("throughput", lambda: throughput.run(seconds=3 if quick else 10)),
        ("agent scale", lambda: agent_scale.run(vms=100 if quick else 500)),
        ("scale", lambda: scale.run(hosts=50, vms=200) if quick else scale.run(hosts=hosts, vms=vms)),
    ]
    for name, part in parts:
        started = time.monotonic()
        print(f"bench: {name} ...", flush=True)
        figures += await part()
        print(f"bench: {name} done in {time.monotonic() - started:.0f} s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms", type=int, default=10000)
    args = parser.parse_args()
    started = time.monotonic()
    table = render(asyncio.run(measure(args.quick, args.hosts, args.vms)))
    took = time.monotonic() - started
    print(table)
    if args.quick or args.no_doc:
        return
    sized = "" if (args.hosts, args.vms) == (1000, 10000) else f" (`--hosts {args.hosts} --vms {args.vms}`)"
    header = f"Measured by `make bench`{sized} on {time.strftime('%Y-%m-%d')} in {took / 60:.0f} min, on {_machine()}."
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + f"\n{header}\n\n{table}\n" + text[end:])
    print(f"bench: {DOC.relative_to(ROOT)} refreshed")


if __name__ == "__main__":
    main()
