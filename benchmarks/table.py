"""The one table ``make bench`` prints: figure, target, measured, verdict."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str
    measured: str
    target: str = ""  # empty: reported, no target
    met: bool | None = None  # None: no target

    @property
    def verdict(self) -> str:
        return "" if self.met is None else "met" if self.met else "MISSED"


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(name: str, seconds: list[float]) -> Figure:
    """Median and p95 of latency samples, in ms."""
    ms = [s * 1000 for s in seconds]
    return Figure(name, f"median {statistics.median(ms):.1f} ms, p95 {percentile(ms, 95):.1f} ms")


def ratio_figure(name: str, samples: list[float], baseline: list[float], at_most: float) -> Figure:
    ratio = statistics.median(samples) / statistics.median(baseline)
    return Figure(name, f"{ratio:.2f}x", f"<= {at_most:.2f}x", ratio <= at_most)


def at_most(name: str, value: float, limit: float, unit: str, shown: str = "") -> Figure:
    return Figure(name, shown or f"{value:.1f} {unit}", f"<= {limit:g} {unit}", value <= limit)


def at_least(name: str, value: float, limit: float, unit: str, shown: str = "") -> Figure:
    return Figure(name, shown or f"{value:.0f} {unit}", f">= {limit:g} {unit}", value >= limit)


def render(figures: list[Figure]) -> str:
    """A Markdown table (readable as plain text too)."""
    rows = [("figure", "target", "measured", "verdict"), *((f.name, f.target, f.measured, f.verdict) for f in figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
