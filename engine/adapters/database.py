"""The engine's connection pools, set up once for every use.

- Every connection waits at most ``VM_LOCK_WAIT_SECONDS`` for a lock — in practice the VM row
  lock that changes to one VM queue on — set once per connection rather than per transaction.
- A connection given back to the pool is not reset (asyncpg's default costs a round trip per
  use): the engine leaves no session state behind — only ``SET LOCAL``, no LISTEN, no cursors,
  advisory locks only transaction-scoped — and a connection somehow given back inside a
  transaction is rolled back.
"""

from __future__ import annotations

import asyncpg

VM_LOCK_WAIT_SECONDS = 90


async def _each_connection(conn: asyncpg.Connection) -> None:
    await conn.execute(f"SET lock_timeout = '{VM_LOCK_WAIT_SECONDS}s'")


async def _given_back(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():  # a local check, no round trip
        await conn.execute("ROLLBACK")


# An idle connection is closed after this long: a burst of requests does not leave the engine
# holding (and PostgreSQL serving) its peak number of connections, each with its caches.
IDLE_CONNECTION_SECONDS = 60.0


async def create_pool(url: str, max_size: int) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url, min_size=1, max_size=max_size, init=_each_connection, reset=_given_back,
        max_inactive_connection_lifetime=IDLE_CONNECTION_SECONDS,
    )  # fmt: skip
    return pool
