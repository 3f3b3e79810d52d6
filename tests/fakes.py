"""A scripted fake of the engine's :class:`~engine.adapters.agent_client.Agent`.

It behaves like a tiny host — VMs it runs, NICs placed on free PCI slots from 0x03 up — and
lets a test script what the next call of a verb does instead (an exception, another answer),
so the services' failure and recovery paths can be driven on purpose.  It records every call.
A fake for unit tests of the engine's logic; never the proof that hot plug works (the e2e
tests are).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from typing import Any

from engine.adapters.agent_client import AgentError, HostUnreachable
from engine.domain.model import Host
from shared_schema import errors as wire
from shared_schema.answers import VM_UP, PlacedNic, UnplugReason, VmStats, VmStatus, device_hash, failure_data
from shared_schema.device_update import NicUpdate
from shared_schema.nic import NicRef, NicSpec, PciAddress
from shared_schema.vm import VmSpec


def unreachable(host: Host) -> HostUnreachable:
    return HostUnreachable(f"host {host.name} ({host.address}:{host.port}) is not responding")


def hotplug_refused(message: str = "libvirt refused") -> AgentError:
    return AgentError(wire.HOTPLUG_NIC.code, f"{wire.HOTPLUG_NIC.message}: {message}", failure_data(libvirt_code=1))


def update_refused(message: str = "libvirt refused") -> AgentError:
    return AgentError(wire.UPDATE_DEVICE.code, f"{wire.UPDATE_DEVICE.message}: {message}", {})


def hotunplug_failed(reason: UnplugReason) -> AgentError:
    return AgentError(wire.HOTUNPLUG_NIC.code, f"{wire.HOTUNPLUG_NIC.message}: {reason}", failure_data(reason=reason))


@dataclass
class Hold:
    """A scripted outcome: the host does the work, then answers only once ``release`` is set
    (never, if the test cancels the caller meanwhile: an engine that dies mid-call)."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    reached: asyncio.Event = field(default_factory=asyncio.Event)  # set when the host has done the work

    async def answer(self) -> None:
        self.reached.set()
        await self.release.wait()


class AnswerLost:
    """A scripted outcome: the host does the work, and its answer never reaches the engine."""


@dataclass
class ScriptedAgent:
    """Answers like a host unless ``script(verb, ...)`` says otherwise for the next calls."""

    vms: dict[str, dict[str, PlacedNic]] = field(default_factory=dict)  # vm id -> alias -> NIC
    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (verb, vm id, what)
    statuses: dict[str, str] = field(default_factory=dict)  # vm id -> VDSM status, when not Up
    _scripts: defaultdict[str, deque[Any]] = field(default_factory=lambda: defaultdict(deque))
    closed: bool = False

    def script(self, verb: str, *outcomes: Any) -> None:
        """The next calls of ``verb`` raise these exceptions (or give these answers), in order."""
        self._scripts[verb].extend(outcomes)

    def _scripted(self, verb: str) -> Any:
        if self._scripts[verb]:
            outcome = self._scripts[verb].popleft()
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return None

    @staticmethod
    async def _after_work(host: Host, outcome: Any) -> None:
        """What a Hold or AnswerLost outcome does once the host has done the work."""
        if isinstance(outcome, Hold):
            await outcome.answer()
        elif isinstance(outcome, AnswerLost):
            raise unreachable(host)

    def verbs(self) -> list[str]:
        return [verb for verb, _, _ in self.calls]

    def _place(self, vm_id: str, nic: NicSpec) -> PlacedNic:
        taken = {n.address.slot for n in self.vms[vm_id].values() if n.address}
        address = nic.address or PciAddress(0, 0, next(s for s in range(3, 32) if s not in taken), 0)
        placed = PlacedNic(
            alias=nic.alias,
            mac=nic.mac,
            model=nic.model,
            network=nic.network,
            address=address,
            link_active=nic.link_active,
        )
        self.vms[vm_id][nic.alias] = placed
        return placed

    async def ping(self, host: Host) -> None:
        self.calls.append(("Host.ping", "", host.name))
        self._scripted("Host.ping")

    async def create_vm(self, host: Host, spec: VmSpec) -> VmStats:
        self.calls.append(("VM.create", spec.vm_id, spec))
        answer = self._scripted("VM.create")
        if spec.vm_id in self.vms:
            raise AgentError(wire.VM_EXISTS.code, wire.VM_EXISTS.message, {})
        self.vms[spec.vm_id] = {}
        nics = tuple(self._place(spec.vm_id, n) for n in spec.nics)
        await self._after_work(host, answer)
        return answer if isinstance(answer, VmStats) else VmStats(spec.vm_id, spec.name, "Up", nics)

    async def destroy_vm(self, host: Host, vm_id: str) -> None:
        self.calls.append(("VM.destroy", vm_id, None))
        outcome = self._scripted("VM.destroy")
        if self.vms.pop(vm_id, None) is None:
            raise AgentError(wire.NO_VM.code, wire.NO_VM.message, {})
        await self._after_work(host, outcome)

    async def hotplug_nic(self, host: Host, vm_id: str, nic: NicSpec) -> PlacedNic:
        self.calls.append(("VM.hotplugNic", vm_id, nic))
        answer = self._scripted("VM.hotplugNic")
        if vm_id not in self.vms:
            raise AgentError(wire.NO_VM.code, wire.NO_VM.message, {})
        if isinstance(answer, PlacedNic):
            self.vms[vm_id][answer.alias] = answer
            return answer
        placed = self._place(vm_id, nic)
        await self._after_work(host, answer)
        return placed

    async def hotunplug_nic(self, host: Host, vm_id: str, nic: NicRef) -> None:
        self.calls.append(("VM.hotunplugNic", vm_id, nic))
        outcome = self._scripted("VM.hotunplugNic")
        if vm_id not in self.vms:
            raise AgentError(wire.NO_VM.code, wire.NO_VM.message, {})
        if self.vms[vm_id].pop(nic.alias or "", None) is None:
            raise hotunplug_failed(UnplugReason.NO_SUCH_DEVICE)
        await self._after_work(host, outcome)

    async def update_device(self, host: Host, vm_id: str, update: NicUpdate) -> PlacedNic:
        """VM.updateDevice: a NIC's link state, as the agent does it (56 for a NIC the VM lacks)."""
        self.calls.append(("VM.updateDevice", vm_id, update))
        outcome = self._scripted("VM.updateDevice")
        if vm_id not in self.vms:
            raise AgentError(wire.NO_VM.code, wire.NO_VM.message, {})
        placed = self.vms[vm_id].get(update.alias)
        if placed is None:
            raise update_refused(f"the VM has no NIC with alias {update.alias}")
        if update.link_active is not None:
            placed = self.vms[vm_id][update.alias] = replace(placed, link_active=update.link_active)
        await self._after_work(host, outcome)
        return placed

    def stats(self, vm_id: str) -> VmStats:
        nics = tuple(self.vms[vm_id].values())
        return VmStats(vm_id, f"vm-{vm_id[:8]}", self.statuses.get(vm_id, VM_UP), nics, device_hash(nics))

    async def vm_statuses(self, host: Host, timeout: float) -> list[VmStatus]:
        self.calls.append(("Host.getAllVmStats", "", host.name))
        self._scripted("Host.getAllVmStats")
        return [VmStatus(s.vm_id, s.name, s.status, s.device_hash) for s in map(self.stats, self.vms)]

    async def vm_full_list(self, host: Host, vm_ids: list[str], timeout: float) -> list[VmStats]:
        self.calls.append(("Host.getVMFullList", ",".join(vm_ids), host.name))
        self._scripted("Host.getVMFullList")
        return [self.stats(vm_id) for vm_id in vm_ids if vm_id in self.vms]

    async def close(self) -> None:
        self.closed = True
