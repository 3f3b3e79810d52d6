"""Where a request's time goes, for the ``Server-Timing`` header of every API answer.

``db`` is the time spent waiting for PostgreSQL (every statement of every transaction,
the operations journal's included), ``host`` for the agents' answers, ``app`` the whole
handler; the rest of ``app`` is the engine's own Python.  Browsers' developer tools and
``make bench`` read it (``benchmarks/latency.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_phases: ContextVar[dict[str, float] | None] = ContextVar("phases", default=None)


@contextmanager
def request_phases() -> Iterator[dict[str, float]]:
    """Collect the phases of the request handled inside (seconds by name)."""
    phases: dict[str, float] = {}
    token = _phases.set(phases)
    try:
        yield phases
    finally:
        _phases.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    phases = _phases.get()
    if phases is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def header(phases: dict[str, float]) -> str:
    return ", ".join(f"{name};dur={seconds * 1000:.2f}" for name, seconds in phases.items())
