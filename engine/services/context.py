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

    async def call_host(self, host: Host, failure: ErrorKind, method: str, **params: Any) -> Any:
        """Call a host's agent; its refusal becomes ``failure`` with the agent's reason."""
        try:
            return await self.agents.call(host, method, **params)
        except HostUnreachable as exc:
            raise EngineError(errors.HOST_NOT_RESPONDING, str(exc)) from None
        except AgentError as exc:
            raise EngineError(failure, exc.message, {"hostCode": exc.code, **exc.data}) from None
