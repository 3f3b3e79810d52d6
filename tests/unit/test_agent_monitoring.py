"""Host.getAllVmStats (status + device hash) and Host.getVMFullList through the agent's JSON-RPC
face, on the simulated hypervisor: the hash moves exactly when the VM's devices do, including a
removal that completes after its unplug call gave up."""

from __future__ import annotations

import asyncio
import json
import uuid
import warnings
from typing import Any

import pytest

from shared_schema import verbs
from shared_schema.answers import VM_UP, VmStats, VmStatus, device_hash, list_of
from vdsm_agent.mirroring import PortMirror
from vdsm_agent.nics import NicService
from vdsm_agent.simulated import SimulatedHostNet, SimulatedHypervisor
from vdsm_agent.vms import VmService

with warnings.catch_warnings():  # jsonrpcserver 5.0.9 reads its schema with a deprecated importlib call
    warnings.simplefilter("ignore", DeprecationWarning)
    from vdsm_agent import rpc


class Agent:
    """The agent's JSON-RPC methods on a simulated hypervisor, called as the engine would."""

    def __init__(self, hv: SimulatedHypervisor | None = None, unplug_timeout: float = 1.0):
        self.hv = hv or SimulatedHypervisor()
        mirror = PortMirror(self.hv, SimulatedHostNet(self.hv))
        self.nics = NicService(self.hv, mirror, unplug_timeout, unplug_retry_interval=60)
        services = rpc.Services(self.hv, self.nics, VmService(self.hv, self.nics, mirror), self.nics.metrics)
        self.methods = rpc.methods(services)
        self._ids = 0

    async def open(self) -> Agent:
        await self.hv.open(self.nics.on_device_event)
        return self

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": self._ids})
        answer: dict[str, Any] = json.loads(await rpc.dispatch(body, self.methods))
        return answer

    async def ok(self, method: str, **params: Any) -> Any:
        answer = await self.call(method, **params)
        assert "result" in answer, answer
        return answer["result"]

    async def create(self, name: str, *nics: dict[str, Any]) -> str:
        vm_id = str(uuid.uuid4())
        await self.ok(verbs.CREATE, vmId=vm_id, vmName=name, memSize=128, nics=list(nics))
        return vm_id

    async def hashes(self) -> dict[str, str]:
        statuses: list[VmStatus] = list_of(VmStatus.from_params, await self.ok(verbs.ALL_VM_STATS))
        return {s.vm_id: s.device_hash for s in statuses}

    async def full(self, *vm_ids: str) -> dict[str, VmStats]:
        found: list[VmStats] = list_of(VmStats.from_params, await self.ok(verbs.VM_FULL_LIST, vmList=list(vm_ids)))
        return {s.vm_id: s for s in found}


def nic(n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "interface", "device": "bridgeless", "macAddr": f"00:1a:4a:17:00:{n:02x}", "nicModel": "pv",
            "id": f"n{n}", **extra}  # fmt: skip


async def test_all_vm_stats_answers_status_and_hash_without_nics() -> None:
    agent = await Agent().open()
    vm_id = await agent.create("mon-a", nic(1))
    (entry,) = await agent.ok(verbs.ALL_VM_STATS)
    assert set(entry) == {"vmId", "vmName", "status", "hash"}
    assert (entry["vmId"], entry["vmName"], entry["status"]) == (vm_id, "mon-a", VM_UP)
    full = (await agent.full(vm_id))[vm_id]
    assert entry["hash"] == full.device_hash == device_hash(full.nics)
    assert [n.mac for n in full.nics] == ["00:1a:4a:17:00:01"]


async def test_the_hash_moves_on_plug_and_unplug_and_comes_back_for_equal_devices() -> None:
    agent = await Agent().open()
    vm_id = await agent.create("mon-b", nic(1))
    other = await agent.create("mon-other")
    before = await agent.hashes()
    assert await agent.hashes() == before  # nothing changed, nothing moves

    await agent.ok(verbs.HOTPLUG_NIC, vmId=vm_id, nic=nic(2))
    plugged = await agent.hashes()
    assert plugged[vm_id] != before[vm_id]
    assert plugged[other] == before[other]
    assert {n.alias for n in (await agent.full(vm_id))[vm_id].nics} == {"ua-n1", "ua-n2"}

    await agent.ok(verbs.HOTUNPLUG_NIC, vmId=vm_id, nic={"alias": "ua-n2"})
    unplugged = await agent.hashes()
    assert unplugged[vm_id] == before[vm_id]  # the same devices again: the same hash
    assert {n.alias for n in (await agent.full(vm_id))[vm_id].nics} == {"ua-n1"}


async def test_create_answers_the_hash_that_monitoring_then_reports() -> None:
    agent = await Agent().open()
    vm_id = str(uuid.uuid4())
    created = VmStats.from_params(await agent.ok(verbs.CREATE, vmId=vm_id, vmName="mon-c", nics=[nic(1), nic(2)]))
    assert created.device_hash and created.device_hash == device_hash(created.nics)
    assert (await agent.hashes())[vm_id] == created.device_hash


async def test_full_list_of_some_every_or_unknown_vms() -> None:
    agent = await Agent().open()
    a = await agent.create("mon-d1", nic(1))
    b = await agent.create("mon-d2")
    unknown = str(uuid.uuid4())
    assert list(await agent.full(b, unknown, a, b)) == [b, a]  # as asked, each once; unknown ids absent
    assert await agent.full(unknown) == {}
    assert await agent.full() == {}  # an empty list names no VM
    for every in ({}, {"vmList": None}):
        found = list_of(VmStats.from_params, await agent.ok(verbs.VM_FULL_LIST, **every))
        assert {s.vm_id for s in found} == {a, b}


@pytest.mark.parametrize(
    ("vm_list", "named"),
    [("all", "vmList"), ({"id": "x"}, "vmList"), (["not-a-uuid"], "vmList[0]"), ([str(uuid.uuid4()), 7], "vmList[1]")],
    ids=["text", "object", "bad-uuid", "number"],
)
async def test_a_malformed_vm_list_is_invalid_params(vm_list: Any, named: str) -> None:
    agent = await Agent().open()
    answer = await agent.call(verbs.VM_FULL_LIST, vmList=vm_list)
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"].startswith(f"Invalid parameter: {named}: ")


class _SlowGuest(SimulatedHypervisor):
    """A guest that releases a NIC ``delay`` seconds after the request; until then libvirt still
    has the device (as libvirt does: the live XML changes with DEVICE_REMOVED, not before)."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    async def detach(self, vm_id: str, alias: str) -> None:
        dom = self._get(vm_id)
        iface = next(i for i in dom.interfaces if i.alias == alias)

        def release() -> None:
            dom.interfaces.remove(iface)
            assert self._listener is not None
            self._listener(vm_id, alias, True)

        asyncio.get_running_loop().call_later(self.delay, release)


async def test_a_removal_after_the_unplug_gave_up_moves_the_hash() -> None:
    agent = await Agent(_SlowGuest(delay=0.2), unplug_timeout=0.05).open()
    vm_id = await agent.create("mon-e", nic(1), nic(2))
    before = await agent.hashes()
    answer = await agent.call(verbs.HOTUNPLUG_NIC, vmId=vm_id, nic={"alias": "ua-n2"})
    assert answer["error"]["code"] == 50 and answer["error"]["data"] == {"reason": "timeout"}
    assert (await agent.hashes())[vm_id] == before[vm_id]  # still there: the hash has not moved

    await asyncio.sleep(0.3)  # the guest lets go after all
    assert (await agent.hashes())[vm_id] != before[vm_id]
    assert {n.alias for n in (await agent.full(vm_id))[vm_id].nics} == {"ua-n1"}
    assert agent.nics.metrics.registry.get_sample_value("vdsm_agent_late_removals_total") == 1


async def test_getallvmstats_counts_vms_by_status() -> None:
    agent = await Agent().open()
    for n in range(3):
        await agent.create(f"mon-f{n}")
    await agent.ok(verbs.ALL_VM_STATS)
    sample = agent.nics.metrics.registry.get_sample_value
    assert sample("vdsm_agent_vms", {"status": VM_UP}) == 3
    assert sample("vdsm_agent_vms", {"status": "Down"}) == 0
