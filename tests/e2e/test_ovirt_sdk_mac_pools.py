"""oVirt's own Python SDK (unmodified) sees the engine's MAC pool and grows it, as an operator whose
NICs have used up the pool does: the next NIC added through the SDK gets a MAC of the new range."""

from __future__ import annotations

import asyncio
from typing import Any

import ovirtsdk4 as sdk
import ovirtsdk4.types as types

from engine.domain.macpool import DEFAULT_POOL_ID
from engine.services.macpools import MAC_POOL_UPDATE_FAILED, MAC_POOL_UPDATED
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup

ONE_MAC = ("02:00:00:00:01:00", "02:00:00:00:01:00")  # a pool the first NIC uses up
GROWN = ("02:00:00:00:02:00", "02:00:00:00:02:ff")


def _story(base: str, cluster_id: str, profile_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    connection = sdk.Connection(url=f"{base}/ovirt-engine/api", username="admin@internal", password=ADMIN_PASSWORD)
    system = connection.system_service()
    pools = system.mac_pools_service()
    (pool,) = pools.list()
    out["listed"] = (pool.id, pool.name, pool.default_pool, pool.allow_duplicates,
                     [(r.from_, r.to) for r in pool.ranges])  # fmt: skip
    service = pools.mac_pool_service(pool.id)

    vm = system.vms_service().add(types.Vm(name="pool-vm", cluster=types.Cluster(id=cluster_id),
                                           os=types.OperatingSystem(type="rhel_6x64")))  # fmt: skip
    nics = system.vms_service().vm_service(vm.id).nics_service()

    def add(name: str) -> str:
        nic = nics.add(types.Nic(name=name, vnic_profile=types.VnicProfile(id=profile_id), plugged=False))
        return str(nic.mac.address)

    service.update(types.MacPool(ranges=[types.Range(from_=ONE_MAC[0], to=ONE_MAC[1])]))
    out["first"] = add("nic1")
    try:
        add("nic2")
    except sdk.Error as exc:
        out["used up"] = str(exc)

    grown = service.update(types.MacPool(ranges=[types.Range(from_=ONE_MAC[0], to=ONE_MAC[1]),
                                                 types.Range(from_=GROWN[0], to=GROWN[1])]))  # fmt: skip
    out["updated"] = [(r.from_, r.to) for r in grown.ranges]
    out["read back"] = [(r.from_, r.to) for r in service.get().ranges]
    out["after growing"] = add("nic2")
    try:
        service.update(types.MacPool(allow_duplicates=True))
    except sdk.Error as exc:
        out["duplicates"] = str(exc)
    connection.close()
    return out


async def test_the_ovirt_sdk_lists_the_mac_pool_and_grows_it(engine_setup: EngineSetup) -> None:
    s = engine_setup
    out = await asyncio.to_thread(_story, s.api.base, s.cluster_id, s.profile_id)

    assert out["listed"] == (DEFAULT_POOL_ID, "Default", True, False, [("56:6f:1a:00:00:00", "56:6f:1a:00:ff:ff")])
    assert out["first"] == ONE_MAC[0]
    assert "no free MAC address is left in the MAC pool" in out["used up"]
    assert out["updated"] == out["read back"] == [ONE_MAC, GROWN]
    assert out["after growing"] == GROWN[0]
    assert "duplicate MAC addresses are not supported" in out["duplicates"]
    events = (await s.api.ok("GET", "/events"))["event"]
    audited = [e["code"] for e in events if e["code"] in (MAC_POOL_UPDATED, MAC_POOL_UPDATE_FAILED)]
    assert audited == [MAC_POOL_UPDATE_FAILED, MAC_POOL_UPDATED, MAC_POOL_UPDATED]  # newest first
