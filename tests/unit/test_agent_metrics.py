"""GET /metrics on the agent's aiohttp application (simulated hypervisor, loopback only): request
latency by verb, plug/unplug results by code, VMs by status; each application its own registry."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from shared_schema import verbs
from vdsm_agent.settings import AgentSettings

with warnings.catch_warnings():  # jsonrpcserver 5.0.9 reads its schema with a deprecated importlib call
    warnings.simplefilter("ignore", DeprecationWarning)
    from vdsm_agent.app import create_app


class Client:
    def __init__(self, http: TestClient[Any, Any]):
        self.http = http

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        request = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        async with self.http.post("/jsonrpc", json=request) as resp:
            answer: dict[str, Any] = await resp.json()
            return answer

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with self.http.get("/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


@pytest.fixture
async def agents() -> AsyncIterator[tuple[Client, Client]]:
    settings = AgentSettings(hypervisor="simulated", mirror_sync_interval=60)
    async with (
        TestClient(TestServer(create_app(settings), host="127.0.0.1")) as one,
        TestClient(TestServer(create_app(settings), host="127.0.0.1")) as two,
    ):
        yield Client(one), Client(two)


NIC = {"type": "interface", "device": "bridgeless", "macAddr": "00:1a:4a:20:00:01", "nicModel": "pv", "id": "m"}


async def test_metrics_count_calls_results_and_vms_per_application(agents: tuple[Client, Client]) -> None:
    one, two = agents
    vm_id = str(uuid.uuid4())
    assert "result" in await one.call(verbs.CREATE, vmId=vm_id, vmName="metered")
    assert "result" in await one.call("hotplugNic", vmId=vm_id, nic=NIC)  # the bare name counts as the verb
    assert (await one.call(verbs.HOTPLUG_NIC, vmId=vm_id, nic={**NIC, "id": "other"}))["error"]["code"] == 49
    assert (await one.call(verbs.HOTUNPLUG_NIC, vmId=vm_id, nic={"alias": "ua-nosuch"}))["error"]["code"] == 50
    assert "result" in await one.call(verbs.HOTUNPLUG_NIC, vmId=vm_id, nic={"alias": "ua-m"})
    assert "result" in await one.call(verbs.ALL_VM_STATS)

    seen = await one.metrics()
    plug, unplug = (("verb", verbs.HOTPLUG_NIC),), (("verb", verbs.HOTUNPLUG_NIC),)
    assert seen[("vdsm_agent_request_duration_seconds_count", plug)] == 2
    assert seen[("vdsm_agent_request_duration_seconds_count", unplug)] == 2
    assert seen[("vdsm_agent_request_duration_seconds_count", (("verb", verbs.CREATE),))] == 1
    assert seen[("vdsm_agent_request_duration_seconds_sum", plug)] > 0
    assert seen[("vdsm_agent_nic_results_total", (("code", "0"), *plug))] == 1
    assert seen[("vdsm_agent_nic_results_total", (("code", "49"), *plug))] == 1
    assert seen[("vdsm_agent_nic_results_total", (("code", "0"), *unplug))] == 1
    assert seen[("vdsm_agent_nic_results_total", (("code", "50"), *unplug))] == 1
    assert seen[("vdsm_agent_vms", (("status", "Up"),))] == 1
    assert seen[("vdsm_agent_unplug_resends_total", ())] == 0

    other = await two.metrics()  # another application in the same process: its own counts
    assert ("vdsm_agent_request_duration_seconds_count", plug) not in other
    assert other[("vdsm_agent_unplug_resends_total", ())] == 0
