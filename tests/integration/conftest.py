"""Fixtures of the integration tests: a connection pool on a freshly migrated database, and a
VM running on a scripted fake host (for the services' and monitoring's tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from engine.adapters import database
from engine.domain.model import Host, Nic, Version, Vm, VnicProfile
from engine.services import inventory, nics, vms
from engine.services.context import Context
from engine.services.hosts_calls import HostCalls
from engine.services.nics import NicFields
from tests.fakes import ScriptedAgent

USER = "admin@internal"


@pytest.fixture
async def pool(migrated_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await database.create_pool(migrated_database_url, max_size=40)  # as the engine's
    try:
        yield created
    finally:
        await created.close()


@dataclass
class Running:
    ctx: Context
    agent: ScriptedAgent
    host: Host
    profile: VnicProfile
    vm: Vm
    nic1: Nic  # plugged at start


@pytest.fixture
async def running(pool: asyncpg.Pool) -> Running:
    """A rhel_6x64 VM with one plugged NIC, started on the fake host."""
    agent = ScriptedAgent()
    ctx = Context(pool, HostCalls(agent))
    cluster = await inventory.add_cluster(ctx, "c1", Version(4, 7))
    host = await inventory.add_host(ctx, "h1", cluster.id, "192.0.2.1", 54321)
    _, profile = await inventory.add_network(ctx, "net1", cluster_id=cluster.id)
    vm = await vms.add_vm(ctx, USER, Vm(id="", name="vm1", cluster_id=cluster.id, os_type="rhel_6x64",
                                        status="down", memory_bytes=128 * 2**20))  # fmt: skip
    nic1 = await nics.add_nic(ctx, USER, vm.id, NicFields(name="nic1", profile_id=profile.id))
    vm = await vms.run_vm(ctx, USER, vm.id)
    async with ctx.transaction() as repo:
        nic1 = await repo.nic(vm.id, nic1.id)
    return Running(ctx, agent, host, profile, vm, nic1)
