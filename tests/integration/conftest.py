"""Fixtures of the integration tests: a connection pool on a freshly migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture
async def pool(migrated_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(migrated_database_url, min_size=1, max_size=40)
    try:
        yield created
    finally:
        await created.close()
