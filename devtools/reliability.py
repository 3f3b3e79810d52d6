"""Render docs/reliability.md's table from what the fault and bad-input suites measured.

Each suite writes ``test-output/reliability/<suite>.json``: ``{"suite", "torture", "rows": [...]}``
with one row per fault or kind of bad input — ``what``, ``injected`` (times or cases),
``apart_right_after`` (faults: rounds after which the database and the host differed at first),
``left`` (differences, or 5xx answers, left at the end: must be 0), ``converge`` and ``note``.
``make torture`` runs the long suites and then this, so the table in the docs is the last
torture run's.  ``python -m devtools.reliability --check`` only prints the table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "test-output" / "reliability"
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- table:begin -->", "<!-- table:end -->"
ORDER = ("faults", "api_fuzz", "agent_fuzz")


def _machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs, {memory:.0f} GiB, Linux {platform.release()}, Python {platform.python_version()}"


def table() -> str:
    suites = {}
    for path in sorted(RESULTS.glob("*.json")):
        found = json.loads(path.read_text())
        suites[found.get("suite", path.stem)] = found
    if not suites:
        raise SystemExit(f"no results in {RESULTS}: run make torture (or make test) first")
    kinds = {s.get("torture") for s in suites.values()}
    run = "make torture" if kinds == {True} else "make test" if kinds == {False} else "make test and make torture"
    lines = [
        f"Measured by `{run}` on {time.strftime('%Y-%m-%d')}, {_machine()}.",
        "",
        "| fault or bad input | injected | apart right after | left at the end | time to converge | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name in sorted(suites, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        for row in suites[name]["rows"]:
            apart = row.get("apart_right_after", "")
            lines.append(
                f"| {row['what']} | {row['injected']} | {apart} | {row['left']} | {row.get('converge', '')} "
                f"| {row.get('note', '')} |"
            )
    return "\n".join(lines)


def main() -> None:
    rendered = table()
    print(rendered)
    if "--check" in sys.argv:
        return
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + rendered + "\n" + text[end:])
    print(f"\nreliability: {DOC.relative_to(ROOT)} refreshed")


if __name__ == "__main__":
    main()
