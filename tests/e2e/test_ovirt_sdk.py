"""oVirt's own Python SDK (ovirt-engine-sdk-python, unmodified) drives the seed's NIC story against
this engine, on the real guest: what automation built on the SDK does when it manages a NIC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import libvirt
import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest

from devtools import guest
from engine.domain.secrets import token_digest
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup, boot_vm
from tests.e2e.test_engine_story import live_macs

ZERO = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
async def sdk_vm(engine_setup: EngineSetup) -> AsyncIterator[dict[str, Any]]:
    """A running VM of the engine, booted to the tiny guest's ready marker."""
    vm = await boot_vm(engine_setup, "sdk-vm")
    yield vm
    with contextlib.suppress(AssertionError):
        await engine_setup.api.ok("POST", f"/vms/{vm['id']}/stop")


def _story(base: str, vm_name: str, live: Callable[[], dict[str, str]], seen: Callable[[str], None]) -> dict[str, Any]:
    """The SDK calls, in the order a NIC-managing script makes them; returns what it observed."""
    out: dict[str, Any] = {}
    connection = sdk.Connection(url=f"{base}/ovirt-engine/api", username="admin@internal", password=ADMIN_PASSWORD)
    assert connection.test(raise_exception=True)
    system = connection.system_service()

    # Find the VM by search, follow its cluster link, find the cluster's data center by search.
    (vm,) = system.vms_service().list(search=f"name={vm_name}")
    assert (vm.name, vm.status) == (vm_name, types.VmStatus.UP)
    cluster = connection.follow_link(vm.cluster)
    (dc,) = system.data_centers_service().list(search=f"Clusters.name={cluster.name}")
    out["listed"] = {
        "data_centers": [d.name for d in system.data_centers_service().list()],
        "clusters": [c.name for c in system.clusters_service().list()],
        "networks": [n.name for n in system.networks_service().list()],
    }
    networks = system.data_centers_service().data_center_service(dc.id).networks_service().list()
    network = next(n for n in networks if n.name == "red")
    profile = next(p for p in system.vnic_profiles_service().list() if p.name == "red" and p.network.id == network.id)

    nics = system.vms_service().vm_service(vm.id).nics_service()
    first = nics.add(types.Nic(name="sdk1", interface=types.NicInterface.VIRTIO,
                               vnic_profile=types.VnicProfile(id=profile.id)))  # fmt: skip
    out["added"] = (first.plugged, first.mac.address in live())
    seen(first.mac.address)  # the guest has set the card up: an unplug now is acknowledged
    cold = nics.add(types.Nic(name="sdk2", interface=types.NicInterface.E1000,
                              vnic_profile=types.VnicProfile(id=profile.id), plugged=False))  # fmt: skip
    out["added unplugged"] = (cold.plugged, cold.mac.address in live())

    second = nics.nic_service(cold.id)
    second.activate()
    out["activated"] = (second.get().plugged, cold.mac.address in live())
    second.deactivate()
    out["deactivated"] = (second.get().plugged, cold.mac.address in live())
    second.update(types.Nic(plugged=True))
    out["updated plugged"] = (second.get().plugged, cold.mac.address in live())

    # A plugged NIC of a running VM: rename and remove are refused with the engine's reason.
    for refused in (lambda: second.update(types.Nic(name="renamed")), second.remove):
        try:
            refused()
        except sdk.Error as exc:
            out.setdefault("refusals", []).append(str(exc))
    try:
        nics.nic_service(ZERO).get()
    except sdk.NotFoundError as exc:
        out["not found"] = str(exc)

    # Every link a NIC carries can be followed (an empty collection is fine).
    fetched = nics.nic_service(first.id).get()
    out["links"] = {
        "vm": connection.follow_link(fetched.vm).name,
        "vnic_profile": connection.follow_link(fetched.vnic_profile).name,
        "network_filter_parameters": list(connection.follow_link(fetched.network_filter_parameters)),
        "reported_devices": list(connection.follow_link(fetched.reported_devices)),
        "statistics": list(connection.follow_link(fetched.statistics)),
    }
    out["token"] = connection.authenticate()

    second.update(types.Nic(plugged=False))
    second.remove()
    nics.nic_service(first.id).deactivate()
    nics.nic_service(first.id).remove()
    out["left"] = ([n.name for n in nics.list()], first.mac.address in live())
    connection.close()
    return out


async def test_the_ovirt_sdk_drives_the_whole_nic_story(
    engine_setup: EngineSetup, sdk_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    s = engine_setup

    def live() -> dict[str, str]:
        return live_macs(libvirt_conn, sdk_vm["id"])

    def seen(mac: str) -> None:
        guest.wait_for_console(sdk_vm["console"], mac, 30.0)

    before = {n["name"] for n in (await s.api.ok("GET", f"/vms/{sdk_vm['id']}/nics"))["nic"]}
    out = await asyncio.to_thread(_story, s.api.base, "sdk-vm", live, seen)

    assert {"Default"} <= set(out["listed"]["data_centers"]) and "e2e" in out["listed"]["clusters"]
    assert "red" in out["listed"]["networks"]
    assert out["added"] == (True, True)
    assert out["added unplugged"] == (False, False)
    assert out["activated"] == (True, True)
    assert out["deactivated"] == (False, False)
    assert out["updated plugged"] == (True, True)
    rename, remove = out["refusals"]
    assert "plugged into running VM sdk-vm" in rename and "before editing it" in rename
    assert "before removing it" in remove
    assert "NIC" in out["not found"] and ZERO in out["not found"]
    assert out["links"] == {"vm": "sdk-vm", "vnic_profile": "red", "network_filter_parameters": [],
                            "reported_devices": [], "statistics": []}  # fmt: skip
    assert out["left"] == ([], False)
    after = {n["name"] for n in (await s.api.ok("GET", f"/vms/{sdk_vm['id']}/nics"))["nic"]}
    assert after == before

    # close() logged out: the SDK's token no longer opens anything.
    conn = await asyncpg.connect(s.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM api_sessions") > 0  # other clients' sessions stay
        assert (
            await conn.fetchval("SELECT count(*) FROM api_sessions WHERE token = $1", token_digest(out["token"])) == 0
        )
    finally:
        await conn.close()


async def test_the_sdk_logs_in_again_when_its_token_expired_and_reports_bad_credentials(
    engine_setup: EngineSetup, sdk_vm: dict[str, Any]
) -> None:
    s = engine_setup

    def expire_then_list() -> tuple[str, list[str], str]:
        connection = sdk.Connection(url=f"{s.api.base}/ovirt-engine/api", username="admin@internal",
                                    password=ADMIN_PASSWORD)  # fmt: skip
        try:
            token = connection.authenticate()
            asyncio.run(_drop_session(s.database_url, token))  # as if it had expired
            names = [vm.name for vm in connection.system_service().vms_service().list(search="name=SDK-*")]
            return token, names, connection.authenticate()
        finally:
            connection.close()

    old, names, new = await asyncio.to_thread(expire_then_list)
    assert names == ["sdk-vm"]  # the 401 made the SDK log in again, and the list went through
    assert new != old

    def wrong_password() -> str:
        connection = sdk.Connection(url=f"{s.api.base}/ovirt-engine/api", username="admin@internal", password="no")
        try:
            connection.test(raise_exception=True)
        except sdk.AuthError as exc:
            return str(exc)
        finally:
            connection.close(logout=False)
        return ""

    assert "wrong username or password" in await asyncio.to_thread(wrong_password)


async def _drop_session(database_url: str, token: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM api_sessions WHERE token = $1", token_digest(token))
    finally:
        await conn.close()
