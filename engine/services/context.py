"""What every use case needs: a database pool, the agent clients, and who is asking."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from engine.adapters.agent_client import AgentClients, AgentError, HostUnreachable
from engine.adapters.repository import Repository
from engine.domain import errors
from engine.domain.errors import EngineError, ErrorKind
from engine.domain.model import Host, Nic, Vm

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """What a use case found before it failed, for the failure's audit entry."""

    vm: Vm | None = None
    nic: Nic | None = None


@dataclass
class Context:
    pool: asyncpg.Pool
    agents: AgentClients

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

    async def call_host(self, host: Host, failure: ErrorKind, method: str, **params: Any) -> Any:
        """Call a host's agent; its refusal becomes ``failure`` with the agent's reason."""
        try:
            return await self.agents.call(host, method, **params)
        except HostUnreachable as exc:
            raise EngineError(errors.HOST_NOT_RESPONDING, str(exc)) from None
        except AgentError as exc:
            raise EngineError(failure, exc.message, {"hostCode": exc.code, **exc.data}) from None
