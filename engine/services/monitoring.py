"""Host monitoring: the engine's view follows what really runs on its hosts.

**Polling, VDSM-style.** Every ``monitor_interval`` the engine asks each host it watches for
``Host.getAllVmStats`` — each VM's status and a hash of its devices — and fetches the devices
(``Host.getVMFullList``) only of VMs whose hash or status moved, or that the database places on
the host and the host no longer has.  Polling rather than an event stream: it needs nothing
from the agent but answers, it notices a dead agent by itself (a missed poll), and it converges
after any crash of either side without replaying events that may have been lost; the hash keeps
it cheap for many hosts.

**One engine per host.** A lease in PostgreSQL (``host_leases``) gives each host to one engine;
an engine renews its leases every cycle and takes over hosts whose lease ran out, so when an
engine dies another follows its hosts within ``lease_ttl`` + one cycle.

**Never against a use case.** A VM's changes are computed and applied only under its row lock,
taken with SKIP LOCKED: a VM whose plug, unplug, start or stop is in flight is skipped and looked
at again next cycle, and what the host reports is read while holding the lock, so a report can
never be older than the change it would undo.  The rules are :func:`engine.domain.reconcile.reconcile`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from engine.domain import reconcile as rules
from engine.domain.errors import EngineError
from engine.domain.model import DOWN, Host
from engine.metrics import EngineMetrics
from engine.services.context import Context
from engine.services.follow import ENGINE_USER, follow_host
from engine.settings import EngineSettings

log = logging.getLogger(__name__)
# oVirt's audit log types for host status.
HOST_NON_RESPONSIVE, HOST_UP = 12, 13


@dataclass
class HostWatch:
    """What this engine remembers of a host between polls."""

    missed: int = 0
    last_answer: float | None = None  # time.monotonic() of the last poll answered
    # VM id -> (the host's device hash, the database's device generation) last reconciled: a VM
    # is looked at again when either moved (the engine's own changes bump the generation).
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)


class Monitor:
    def __init__(self, ctx: Context, engine_id: str, settings: EngineSettings, metrics: EngineMetrics):
        self.ctx = ctx
        self.engine_id = engine_id
        self.settings = settings
        self.metrics = metrics
        self.watches: dict[str, HostWatch] = {}
        self._limit = asyncio.Semaphore(64)  # hosts polled at once
        self._polls: dict[str, asyncio.Task[None]] = {}  # host id -> its poll in progress

    async def run(self) -> None:
        """Cycle until cancelled; then hand the hosts back so another engine takes them at once."""
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.cycle()
                except Exception:  # a database hiccup must not end monitoring
                    log.exception("monitoring cycle failed")
                self.metrics.monitor_cycle.observe(time.monotonic() - started)
                await asyncio.sleep(max(0.0, self.settings.monitor_interval - (time.monotonic() - started)))
        finally:
            for poll in self._polls.values():
                poll.cancel()
            with contextlib.suppress(Exception):
                async with self.ctx.transaction() as repo:
                    await repo.release_hosts(self.engine_id)

    async def cycle(self) -> None:
        async with self.ctx.transaction() as repo:
            hosts = await repo.claim_hosts(self.engine_id, self.settings.lease_ttl)
        held = {h.id for h in hosts}
        for gone in set(self.watches) - held:
            del self.watches[gone]
        self.metrics.watched.set(len(hosts))
        # Each host's poll runs on its own: one that hangs (a host dying mid-answer) delays
        # nobody else, and is not started again until it has ended.
        # The polls are spread over the first half of the interval rather than sent at once: a
        # thousand hosts answering together would hold up the API's requests meanwhile.
        spread = self.settings.monitor_interval / 2 / max(1, len(hosts))
        for i, host in enumerate(hosts):
            poll = self._polls.get(host.id)
            if poll is None or poll.done():
                self._polls[host.id] = asyncio.create_task(self._watch_one(host, i * spread), name=f"poll {host.name}")
        for gone in set(self._polls) - held:
            self._polls.pop(gone).cancel()
        running = [poll for poll in self._polls.values() if not poll.done()]
        if running:
            await asyncio.wait(running, timeout=self.settings.monitor_interval)
        await self._count()

    async def _watch_one(self, host: Host, after: float = 0.0) -> None:
        await asyncio.sleep(after)
        async with self._limit:
            try:
                await self.watch(host)
            except EngineError as exc:
                log.warning("host %s: %s", host.name, exc.detail)

    async def watch(self, host: Host) -> None:
        """One poll of one host, and the reconciliation of what moved."""
        state = self.watches.setdefault(host.id, HostWatch())
        try:
            statuses = await self.ctx.hosts.vm_statuses(host)
        except EngineError:
            state.missed += 1
            if state.missed >= self.settings.missed_polls and host.status == "up":
                why = f"Host {host.name} is not responding ({state.missed} polls unanswered)."
                await self._host_status(host, "non_responsive", "warning", why)
            self._age(host, state)
            return
        state.missed, state.last_answer = 0, time.monotonic()
        self._age(host, state)
        if host.status == "non_responsive":
            await self._host_status(host, "up", "normal", f"Host {host.name} is responding again; its status is up.")
        reported = {s.vm_id: s for s in statuses}
        async with self.ctx.one_statement() as repo:
            vms, interrupted = await repo.poll_answered(host.id, list(reported))
        for vm in vms:
            seen = reported.get(vm.id)
            if vm.id in interrupted:
                moved = True  # an operation whose outcome was never stored: settle it
            elif seen is None:
                moved = vm.host_id == host.id and vm.status != DOWN
            else:
                status = rules.STATUS_OF.get(seen.status, DOWN)
                moved = (status, host.id) != (vm.status, vm.host_id) or state.seen.get(vm.id) != (
                    seen.device_hash,
                    vm.device_generation,
                )
            if moved:
                log.debug("host %s: VM %s moved (reported %s)", host.name, vm.name, seen)
                await self.reconcile_vm(host, vm.id, state)
        state.seen = {vm_id: h for vm_id, h in state.seen.items() if vm_id in reported}

    async def reconcile_vm(self, host: Host, vm_id: str, state: HostWatch) -> rules.Changes | None:
        """Bring one VM's rows to what ``host`` reports; None when a use case holds the VM now."""
        async with self.ctx.transaction() as repo:
            vm = await repo.vm_unless_locked(vm_id)
            if vm is None:
                log.debug("host %s: VM %s is busy, next cycle", host.name, vm_id)
                return None  # a plug, unplug, start or stop is in flight: next cycle
            if vm.status != DOWN and vm.host_id not in (None, host.id):
                log.warning("VM %s runs on host %s by the database but host %s reports it", vm.name, vm.host_id,
                            host.name)  # fmt: skip
                return None
            changes, reported = await follow_host(self.ctx, repo, host, vm)  # under the lock
            generation = (await repo.vm(vm.id)).device_generation  # after our own changes
        if reported is not None:
            state.seen[vm.id] = (reported.device_hash, generation)
        for kind in changes.kinds():
            self.metrics.reconciled.labels(kind).inc()
        if changes.kinds():
            log.info("VM %s follows host %s: %s", vm.name, host.name, ", ".join(changes.kinds()))
        return changes

    async def _host_status(self, host: Host, status: str, severity: str, message: str) -> None:
        async with self.ctx.transaction() as repo:
            await repo.set_host_status(host, status)
            await repo.audit(HOST_UP if status == "up" else HOST_NON_RESPONSIVE, severity, message, ENGINE_USER,
                             host=host)  # fmt: skip
        log.warning("%s", message)

    def _age(self, host: Host, state: HostWatch) -> None:
        if state.last_answer is not None:
            self.metrics.host_age.labels(host.name).set(time.monotonic() - state.last_answer)

    async def _count(self) -> None:
        async with self.ctx.transaction() as repo:
            hosts, vms = await repo.counts("hosts"), await repo.counts("vms")
        for gauge, counted in ((self.metrics.hosts, hosts), (self.metrics.vms, vms)):
            gauge.clear()
            for status, n in counted.items():
                gauge.labels(status).set(n)
