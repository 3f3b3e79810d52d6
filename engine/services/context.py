"""What every use case needs: a database pool, the way to call hosts, and failure auditing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from engine.adapters.repository import Repository, TimedTransaction
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import Nic, Vm
from engine.services.hosts_calls import HostCalls
from engine.services.journal import Journal

log = logging.getLogger(__name__)


def database_gone(exc: BaseException, closed: bool | None) -> bool:
    """True when ``exc`` says the database went away (restart, crash, network) rather than
    refusing a statement: the request then fails with 503, and the pool opens new connections.
    ``closed``: whether the connection was closed afterwards; None when it was never opened."""
    if closed is None:
        return isinstance(exc, OSError | TimeoutError | asyncpg.PostgresConnectionError | asyncpg.CannotConnectNowError)
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.OperatorInterventionError):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and closed


def _is_closed(conn: asyncpg.Connection) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool took it back already: it found it dead
        return True


@dataclass
class Attempt:
    """What a use case found before it failed, for the failure's audit entry."""

    vm: Vm | None = None
    nic: Nic | None = None


@dataclass
class Context:
    pool: asyncpg.Pool
    hosts: HostCalls
    # The engine gives the journal a pool of its own (see engine/services/journal.py); tests may
    # share the main one.
    journal: Journal = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.journal is None:
            self.journal = Journal(self.pool)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Repository]:
        async with self._connection(transaction=True) as repo:
            yield repo

    @asynccontextmanager
    async def one_statement(self) -> AsyncIterator[Repository]:
        """For a single statement (atomic by itself): no BEGIN and COMMIT round trips around it."""
        async with self._connection(transaction=False) as repo:
            yield repo

    @asynccontextmanager
    async def _connection(self, transaction: bool) -> AsyncIterator[Repository]:
        closed: bool | None = None
        try:
            async with self.pool.acquire() as conn:
                try:
                    if transaction:
                        async with TimedTransaction(conn.transaction()):
                            yield Repository(conn)
                    else:
                        yield Repository(conn)
                finally:
                    closed = _is_closed(conn)
        except Exception as exc:
            if not database_gone(exc, closed):
                raise
            await self.pool.expire_connections()  # the others are as dead as this one: replace them all
            raise EngineError(
                errors.DATABASE_UNAVAILABLE,
                f"the engine's database cannot be reached now ({type(exc).__name__}: {exc}); try again in a moment",
            ) from None

    async def audit(
        self, log_type: int, severity: str, message: str, user: str, vm: Vm | None = None, nic: Nic | None = None
    ) -> None:
        """Write an audit entry in a transaction of its own: failures are logged even though
        the use case's own transaction rolled back."""
        async with self.transaction() as repo:
            await repo.audit(log_type, severity, message, user, vm, nic)

    @asynccontextmanager
    async def failure_audited(
        self, user: str, log_type: int, what: str, vm_id: str, nic_id: str = ""
    ) -> AsyncIterator[Attempt]:
        """Audit an EngineError raised inside, in a transaction of its own (the use case's has
        rolled back), as "Failed to <what> VM <name>: <reason>"; ``{nic}`` in ``what`` becomes
        the NIC's name once found, else its id.  The caller fills the yielded Attempt."""
        seen = Attempt()
        try:
            yield seen
        except EngineError as exc:
            nic = seen.nic.name if seen.nic else nic_id
            vm = seen.vm.name if seen.vm else vm_id
            message = f"Failed to {what.format(nic=nic)} VM {vm}: {exc.detail}"
            await self.audit(log_type, "error", message, user, seen.vm, seen.nic)
            raise
