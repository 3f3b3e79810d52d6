"""Fixtures every test layer may use: test artefact folder; real PostgreSQL (a throwaway cluster
per test session, fsync off, a fresh database per test)."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pg import Cluster

PROJECT = Path(__file__).resolve().parents[1]
_counter = itertools.count()


@pytest.fixture(scope="session")
def output_dir() -> Iterator[Path]:
    """test-output/: logs and artefacts.  At the end of the run, no password given to an engine
    and no token it issued may appear in any log there."""
    path = PROJECT / "test-output"
    path.mkdir(exist_ok=True)
    started = time.time()
    yield path
    from devtools.engine_proc import SECRETS

    secrets = {s for s in SECRETS if len(s) >= 8}
    leaks = [
        f"{log.relative_to(path)} holds a secret"
        for log in path.rglob("*.log")
        if log.stat().st_mtime >= started and any(s in log.read_text(errors="replace") for s in secrets)
    ]
    assert not leaks, leaks


def _stop_abandoned_clusters() -> None:
    """Stop clusters left by test runs that were killed before their teardown."""
    for root in Path(tempfile.gettempdir()).glob("hotplug-test-pg-*"):
        owner = root / "owner.pid"
        try:
            pid = int(owner.read_text())
            os.kill(pid, 0)
            continue  # its run is still going
        except (OSError, ValueError):
            pass
        Cluster(root / "data").stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    _stop_abandoned_clusters()
    root = Path(tempfile.mkdtemp(prefix="hotplug-test-pg-"))
    os.chmod(root, 0o711)  # the postgres user must pass through to the data folder
    (root / "owner.pid").write_text(str(os.getpid()))
    cluster = Cluster(root / "data", port=5432)
    cluster.init(durable=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cluster.socket_dir, ignore_errors=True)


@pytest.fixture
async def migrated_database_url(database_url: str) -> str:
    """A fresh database with the engine's schema applied."""
    import asyncpg

    from engine.adapters import migrations

    conn = await asyncpg.connect(database_url)
    try:
        await migrations.apply(conn, migrations.packaged())
    finally:
        await conn.close()
    return database_url


@pytest.fixture
def database_url(pg_cluster: Cluster) -> str:
    """An empty database of its own for each test."""
    return pg_cluster.create_database(f"test_{os.getpid()}_{next(_counter)}")
