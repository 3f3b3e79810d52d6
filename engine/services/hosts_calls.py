"""The one way the use cases call a host: engine objects in, typed answers out.

:class:`HostCalls` turns engine NICs and VMs into the agents' wire parameters
(``shared_schema``), calls the :class:`~engine.adapters.agent_client.Agent`, and turns its
failures into :class:`EngineError`: a host that does not answer is 503 HOST_NOT_RESPONDING, a
refusal is the use case's own failure kind (ACTIVATE_NIC_FAILED, UPDATE_NIC_FAILED, ...) with the agent's reason,
and its code in ``data.hostCode``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from engine.adapters.agent_client import Agent, AgentError, HostUnreachable
from engine.domain import errors
from engine.domain.errors import EngineError, ErrorKind
from engine.domain.model import Disk, Host, Nic, QosRate, Vm
from engine.metrics import EngineMetrics
from engine.timing import phase
from shared_schema import errors as wire
from shared_schema import verbs
from shared_schema.answers import PlacedNic, UnplugReason, VmStats, VmStatus, unplug_reason
from shared_schema.device_update import NicUpdate
from shared_schema.nic import Bandwidth, NicRef, NicSpec
from shared_schema.vm import DriveSpec, VmSpec

log = logging.getLogger(__name__)
T = TypeVar("T")
MIB = 1024 * 1024


def alias_of(nic: Nic) -> str:
    return nic.alias or f"ua-{nic.id}"


# oVirt's NetworkQosMapper: its API's Mbps and MB in libvirt's <bandwidth> units (kB/s, kB).
MEGABITS_TO_KILOBYTES = 125
MEGABYTES_TO_KILOBYTES = 1000


def bandwidth(rate: QosRate | None) -> Bandwidth | None:
    """One direction of a profile's QoS as the agent's specParams take it."""
    if rate is None:
        return None
    return Bandwidth(
        rate.average * MEGABITS_TO_KILOBYTES, rate.peak * MEGABITS_TO_KILOBYTES, rate.burst * MEGABYTES_TO_KILOBYTES
    )


def nic_spec(nic: Nic) -> NicSpec:
    return NicSpec(
        device="bridge",
        mac=nic.mac,
        model=nic.model,
        alias=alias_of(nic),
        network=nic.bridge,
        address=nic.address,
        promisc=(nic.bridge,) if nic.port_mirroring else (),
        inbound=bandwidth(nic.qos.inbound) if nic.qos else None,
        outbound=bandwidth(nic.qos.outbound) if nic.qos else None,
        link_active=nic.linked,
    )


def drive_spec(disk: Disk) -> DriveSpec:
    """A disk as VDSM's drive: the bootable one first in the boot order (direct kernel boot, when the
    VM has a kernel, still wins: the agent's rule)."""
    return DriveSpec(disk.name, disk.format, disk.interface, boot_order=1 if disk.bootable else None,
                     readonly=disk.read_only)  # fmt: skip


def vm_spec(vm: Vm, nics: list[Nic], disks: Sequence[Disk] = ()) -> VmSpec:
    """VM.create with only the plugged NICs, and the VM's disks."""
    return VmSpec(
        vm_id=vm.id,
        name=vm.name,
        memory_mib=vm.memory_bytes // MIB,
        kernel=vm.kernel,
        initrd=vm.initrd,
        cmdline=vm.cmdline,
        nics=tuple(nic_spec(n) for n in nics if n.plugged),
        machine=vm.machine,
        drives=tuple(drive_spec(d) for d in disks),
    )


class HostCalls:
    def __init__(self, agent: Agent, poll_timeout: float = 5.0, metrics: EngineMetrics | None = None):
        self.agent = agent
        self.poll_timeout = poll_timeout  # monitoring polls: a host slower than this counts as a missed answer
        self.metrics = metrics or EngineMetrics()

    async def _call(self, failure: ErrorKind, verb: str, call: Awaitable[T]) -> T:
        started, outcome = time.monotonic(), "unreachable"
        try:
            with phase("host"):
                answer = await call
            outcome = "ok"
            return answer
        except HostUnreachable as exc:
            raise EngineError(errors.HOST_NOT_RESPONDING, str(exc)) from None
        except AgentError as exc:
            outcome = "refused"
            raise EngineError(failure, exc.message, {"hostCode": exc.code, **exc.data}) from None
        finally:
            self.metrics.host_calls.labels(verb, outcome).observe(time.monotonic() - started)

    def _nic_result(self, operation: str, code: int) -> None:
        self.metrics.nic_results.labels(operation, str(code)).inc()

    async def answers(self, host: Host) -> bool:
        """True when the host's agent answers a ping."""
        try:
            await self.agent.ping(host)
        except (HostUnreachable, AgentError):
            return False
        return True

    async def vm_statuses(self, host: Host) -> list[VmStatus]:
        """Every VM the host runs, with its status and device hash (a monitoring poll)."""
        return await self._call(
            errors.HOST_NOT_RESPONDING, verbs.ALL_VM_STATS, self.agent.vm_statuses(host, self.poll_timeout)
        )

    async def vm_on_host(self, host: Host, vm_id: str) -> VmStats | None:
        """The VM as the host runs it, NICs included; None when the host does not have it."""
        call = self.agent.vm_full_list(host, [vm_id], self.poll_timeout)
        found = await self._call(errors.HOST_NOT_RESPONDING, verbs.VM_FULL_LIST, call)
        return next((stats for stats in found if stats.vm_id == vm_id), None)

    async def plug(self, host: Host, vm: Vm, nic: Nic) -> PlacedNic:
        call = self.agent.hotplug_nic(host, vm.id, nic_spec(nic))
        try:
            placed = await self._call(errors.ACTIVATE_NIC_FAILED, verbs.HOTPLUG_NIC, call)
        except EngineError as exc:
            self._nic_result("plug", int(str(exc.data.get("hostCode", -1))))
            raise
        self._nic_result("plug", 0)
        return placed

    async def unplug(self, host: Host, vm: Vm, nic: Nic) -> bool:
        """Unplug; False when the host no longer had the NIC (for the caller: it is unplugged)."""
        ref = NicRef(alias=alias_of(nic), mac=None)
        try:
            await self._call(
                errors.DEACTIVATE_NIC_FAILED, verbs.HOTUNPLUG_NIC, self.agent.hotunplug_nic(host, vm.id, ref)
            )
        except EngineError as exc:
            self._nic_result("unplug", int(str(exc.data.get("hostCode", -1))))
            if unplug_reason(exc.data) is not UnplugReason.NO_SUCH_DEVICE:
                raise
            log.warning("VM %s: NIC %s was already gone from host %s", vm.name, nic.name, host.name)
            return False
        self._nic_result("unplug", 0)
        return True

    async def set_link(self, host: Host, vm: Vm, nic: Nic) -> PlacedNic:
        """VM.updateDevice: the plugged NIC's link up or down as ``nic.linked`` says, in place;
        the NIC as the host has it afterwards.  A refusal (56) is UPDATE_NIC_FAILED."""
        update = NicUpdate(alias=alias_of(nic), link_active=nic.linked)
        call = self.agent.update_device(host, vm.id, update)
        try:
            placed = await self._call(errors.UPDATE_NIC_FAILED, verbs.UPDATE_DEVICE, call)
        except EngineError as exc:
            self._nic_result("update", int(str(exc.data.get("hostCode", -1))))
            raise
        self._nic_result("update", 0)
        return placed

    async def start(self, host: Host, vm: Vm, nics: list[Nic], disks: Sequence[Disk] = ()) -> VmStats:
        """VM.create with the plugged NICs and the disks.  A domain the host still runs although the
        database says the VM is down (a start whose answer was lost) is replaced, once."""
        spec = vm_spec(vm, nics, disks)
        try:
            return await self._call(errors.RUN_VM_FAILED, verbs.CREATE, self.agent.create_vm(host, spec))
        except EngineError as exc:
            if exc.data.get("hostCode") != wire.VM_EXISTS.code:
                raise
        log.warning("VM %s was still running on host %s although it was down here; restarting it", vm.name, host.name)
        await self._call(errors.RUN_VM_FAILED, verbs.DESTROY, self.agent.destroy_vm(host, vm.id))
        return await self._call(errors.RUN_VM_FAILED, verbs.CREATE, self.agent.create_vm(host, spec))

    async def stop(self, host: Host, vm: Vm) -> bool:
        """Destroy the VM on its host; False when the host did not run it any more."""
        try:
            await self._call(errors.STOP_VM_FAILED, verbs.DESTROY, self.agent.destroy_vm(host, vm.id))
        except EngineError as exc:
            if exc.data.get("hostCode") != wire.NO_VM.code:
                raise
            log.warning("VM %s was not running on host %s any more", vm.name, host.name)
            return False
        return True
