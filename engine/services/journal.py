"""The operations journal: what the engine asked a host to do, before it asks.

A use case that changes a host holds its VM's row lock and then, for the host call:

1. **records** the operation in ``host_operations``, committed at once on a connection of its
   own (the use case's transaction is still open and must not be committed yet);
2. calls the host;
3. **ends** it in the use case's transaction, together with the result it stores (a plug's
   address, a VM's status) — so the result and the end of the operation commit or vanish together.

A refusal from the host means nothing happened there: the entry is removed at once, still under
the VM's lock.  Any other way out — no answer, a lost answer, the database gone before the
commit, the engine killed — leaves the entry behind.  Since the use case held the VM's lock from
before the entry until it ended, monitoring (which takes that lock) only ever sees entries whose
use case is over; it then follows what the host really did, says in the audit log that an
interrupted operation was settled and how, and removes the entry
(:mod:`engine.services.follow`).  The next request on that VM does the same before it acts.

The journal writes through a pool of its own in the engine: a use case holding a connection of
the main pool never waits for a second one there (that could starve the pool under load).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg

from engine.adapters.repository import Repository
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import Host, HostOperation, Nic, Vm
from engine.timing import phase

log = logging.getLogger(__name__)
T = TypeVar("T")
# The engine's words for an outcome it did not hear: the next look at the host settles it.
UNKNOWN_OUTCOME = "the engine will follow what the host did as soon as the host answers"


class Journal:
    def __init__(self, pool: asyncpg.Pool, engine_id: str = ""):
        self.pool = pool
        self.engine_id = engine_id

    async def begin(
        self, repo: Repository, verb: str, host: Host, vm: Vm, user: str, nic: Nic | None = None
    ) -> Pending:
        """Record the operation (committed at once); ``repo`` is the use case's transaction, which
        must hold the VM's row lock."""
        op = HostOperation(str(uuid.uuid4()), verb, vm.id, host.id, user, nic.id if nic else None)
        with phase("journal"):
            async with self.pool.acquire() as conn:
                await conn.execute(
                    """INSERT INTO host_operations (id, verb, vm_id, nic_id, host_id, user_name, engine_id)
                       VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                    op.id, op.verb, op.vm_id, op.nic_id, op.host_id, op.user, self.engine_id,
                )  # fmt: skip
        return Pending(self, repo, op)

    async def forget(self, op: HostOperation) -> None:
        with phase("journal"):
            async with self.pool.acquire() as conn:
                await conn.execute("DELETE FROM host_operations WHERE id = $1", op.id)


class Pending:
    """One journaled operation of a use case, until its outcome is stored."""

    def __init__(self, journal: Journal, repo: Repository, op: HostOperation):
        self.journal, self.repo, self.op = journal, repo, op

    async def call(self, host_call: Awaitable[T]) -> T:
        """Make the host call.  A refusal means the host did nothing: the entry goes at once.
        No answer means nobody knows yet: the entry stays for monitoring to settle."""
        try:
            return await host_call
        except EngineError as exc:
            if exc.kind is not errors.HOST_NOT_RESPONDING:
                await self.forget()
                raise
            raise EngineError(exc.kind, f"{exc.detail}; {UNKNOWN_OUTCOME}", exc.data) from None

    @property
    def id(self) -> str:
        """For a statement that stores the outcome and ends the operation at once
        (``Repository.set_device(..., ending=op.id)``): then ``done`` is not called."""
        return self.op.id

    async def done(self) -> None:
        """The outcome is stored: ends in the use case's transaction, so both commit together."""
        await self.repo.end_operation(self.op.id)

    async def forget(self) -> None:
        """What the host did was undone: nothing is left to settle."""
        await self.journal.forget(self.op)
