"""Real PostgreSQL: a throwaway cluster per test session (fsync off), a database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pg import Cluster

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="hotplug-test-pg-"))
    os.chmod(root, 0o755)  # the postgres user must reach the data folder
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
def database_url(pg_cluster: Cluster) -> str:
    """An empty database of its own for each test."""
    return pg_cluster.create_database(f"test_{os.getpid()}_{next(_counter)}")
