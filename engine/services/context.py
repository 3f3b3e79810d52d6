"""What every use case needs: a database pool, the way to call hosts, and failure auditing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from engine.adapters.repository import Repository
from engine.domain.errors import EngineError
from engine.domain.model import Nic, Vm
from engine.services.hosts_calls import HostCalls

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """What a use case found before it failed, for the failure's audit entry."""

    vm: Vm | None = None
    nic: Nic | None = None


@dataclass
class Context:
    pool: asyncpg.Pool
    hosts: HostCalls

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Repository]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield Repository(conn)

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
