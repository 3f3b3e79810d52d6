"""The engine follows what really happens on its hosts (real engine, agent, libvirtd, guest):
changes made with virsh behind its back, a VM destroyed, an agent that stops answering, an
engine that dies while another takes its hosts over, and unplugs around a booting guest."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import libvirt
import pytest

from devtools import guest
from devtools.agent_proc import AgentClient, free_port, run_agent
from devtools.engine_proc import EngineClient, run_engine
from devtools.pg import Cluster
from engine.domain import reconcile
from engine.services.monitoring import HOST_NON_RESPONSIVE, HOST_UP
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup, boot_vm
from tests.e2e.test_engine_story import live_macs, pci_text

T = TypeVar("T")
FOLLOWS_WITHIN = 10.0  # seconds: what the issue asks of monitoring
FOREIGN_MAC = "52:54:00:5e:00:42"


async def eventually(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> tuple[T, float]:
    """Poll ``check`` until it returns something true; that value and the seconds it took."""
    started = time.monotonic()
    while True:
        found = await check()
        if found:
            return found, time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"{what}: not within {within:.0f} s")
        await asyncio.sleep(0.2)


async def virsh(*args: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run, ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True
    )
    assert done.returncode == 0, f"virsh {' '.join(args)}: {done.stderr}"
    return done.stdout


async def detach_behind_the_engines_back(conn: libvirt.virConnect, vm_id: str, mac: str) -> None:
    """``virsh detach-device`` until the guest has let the NIC go (a busy guest may miss a request,
    as the agent's own re-sends know)."""
    path = Path(f"/tmp/hotplug-e2e-detach-{os.getpid()}.xml")
    path.write_text(f"<interface type='bridge'><source bridge='hpt-br0'/><mac address='{mac}'/></interface>")
    try:
        for attempt in range(5):
            command = ["virsh", "-c", "qemu:///system", "detach-device", vm_id, str(path), "--live"]
            done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
            assert attempt > 0 or done.returncode == 0, done.stderr  # a re-send may meet one in progress
            for _ in range(30):
                if mac not in await asyncio.to_thread(live_macs, conn, vm_id):
                    return
                await asyncio.sleep(0.2)
        raise AssertionError(f"the guest never released {mac}")
    finally:
        path.unlink()


async def events(api: EngineClient, vm_id: str | None = None) -> list[dict[str, Any]]:
    path = f"/events?vm={vm_id}" if vm_id else "/events"
    found: list[dict[str, Any]] = (await api.ok("GET", path))["event"]
    return found


async def nic_named(api: EngineClient, vm_id: str, name: str) -> dict[str, Any]:
    return next(n for n in (await api.ok("GET", f"/vms/{vm_id}/nics"))["nic"] if n["name"] == name)


@pytest.fixture(scope="module")
async def watched_vm(engine_setup: EngineSetup) -> AsyncIterator[dict[str, Any]]:
    """A running VM: nic1 (virtio) plugged and seen by the guest, nic2 (e1000) not plugged."""
    api = engine_setup.api
    vm = await boot_vm(engine_setup, "watched", [
        {"name": "nic1", "interface": "virtio"}, {"name": "nic2", "interface": "e1000", "plugged": False}])  # fmt: skip
    await asyncio.sleep(2)  # the guest's virtio driver, loaded at boot, settles
    yield vm
    with contextlib.suppress(AssertionError):
        await api.ok("POST", f"/vms/{vm['id']}/stop")


async def test_a_nic_detached_with_virsh_is_shown_unplugged(
    engine_setup: EngineSetup, watched_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    api, vm_id = engine_setup.api, watched_vm["id"]
    nic1 = await nic_named(api, vm_id, "nic1")
    await detach_behind_the_engines_back(libvirt_conn, vm_id, nic1["mac"]["address"])

    async def unplugged() -> dict[str, Any] | None:
        nic = await nic_named(api, vm_id, "nic1")
        return nic if not nic["plugged"] else None

    nic, took = await eventually(unplugged, FOLLOWS_WITHIN, "the API showing nic1 unplugged")
    print(f"virsh detach-device -> API plugged=false in {took:.1f} s")
    assert "address" not in nic
    assert any(e["code"] == reconcile.NIC_UNPLUGGED_ON_HOST for e in await events(api, vm_id))


async def test_a_known_nic_attached_with_virsh_is_shown_plugged_where_the_host_put_it(
    engine_setup: EngineSetup, watched_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    api, vm_id = engine_setup.api, watched_vm["id"]
    nic2 = await nic_named(api, vm_id, "nic2")
    xml = (f"<interface type='bridge'><source bridge='hpt-br0'/><mac address='{nic2['mac']['address']}'/>"
           f"<model type='e1000'/><alias name='ua-{nic2['id']}'/></interface>")  # fmt: skip
    path = Path(f"/tmp/hotplug-e2e-attach-{os.getpid()}.xml")
    path.write_text(xml)
    try:
        await virsh("attach-device", vm_id, str(path), "--live")
    finally:
        path.unlink()

    async def plugged() -> dict[str, Any] | None:
        nic = await nic_named(api, vm_id, "nic2")
        return nic if nic["plugged"] else None

    nic, took = await eventually(plugged, FOLLOWS_WITHIN, "the API showing nic2 plugged")
    print(f"virsh attach-device -> API plugged=true in {took:.1f} s")
    live = await asyncio.to_thread(live_macs, libvirt_conn, vm_id)
    assert pci_text(nic["address"]) == live[nic["mac"]["address"]]
    assert any(e["code"] == reconcile.NIC_PLUGGED_ON_HOST for e in await events(api, vm_id))


async def test_a_foreign_nic_is_reported_and_left_alone(
    engine_setup: EngineSetup, watched_vm: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    api, vm_id = engine_setup.api, watched_vm["id"]
    ours = {n["name"]: n["plugged"] for n in (await api.ok("GET", f"/vms/{vm_id}/nics"))["nic"]}
    await virsh("attach-interface", vm_id, "bridge", "hpt-br0", "--model", "e1000", "--mac", FOREIGN_MAC, "--live")

    async def reported() -> list[dict[str, Any]] | None:
        vm = await api.ok("GET", f"/vms/{vm_id}")
        found = [u for u in vm.get("unmanaged_nics", {}).get("unmanaged_nic", []) if u["mac"]["address"] == FOREIGN_MAC]
        return found or None

    await eventually(reported, FOLLOWS_WITHIN, "the VM showing the foreign NIC")
    assert any(
        e["code"] == reconcile.UNMANAGED_NIC and FOREIGN_MAC in e["description"] for e in await events(api, vm_id)
    )
    await asyncio.sleep(5)  # a few more cycles: still neither adopted nor removed
    assert FOREIGN_MAC in await asyncio.to_thread(live_macs, libvirt_conn, vm_id)
    assert {n["name"]: n["plugged"] for n in (await api.ok("GET", f"/vms/{vm_id}/nics"))["nic"]} == ours


async def test_a_vm_destroyed_with_virsh_is_shown_down(engine_setup: EngineSetup, watched_vm: dict[str, Any]) -> None:
    api, vm_id = engine_setup.api, watched_vm["id"]
    await virsh("destroy", vm_id)

    async def down() -> dict[str, Any] | None:
        vm = await api.ok("GET", f"/vms/{vm_id}")
        return vm if vm["status"] == "down" else None

    vm, took = await eventually(down, FOLLOWS_WITHIN, "the API showing the VM down")
    print(f"virsh destroy -> API status=down in {took:.1f} s")
    assert "host" not in vm
    assert all("address" not in n for n in (await api.ok("GET", f"/vms/{vm_id}/nics"))["nic"])
    assert any(e["code"] == reconcile.VM_DOWN_ON_HOST for e in await events(api, vm_id))
    started = await api.ok("POST", f"/vms/{vm_id}/start")  # and it starts again through the API
    assert started["vm"]["status"] == "up"
    await api.ok("POST", f"/vms/{vm_id}/stop")


async def test_a_host_whose_agent_stops_is_non_responsive_then_up_when_it_returns(
    engine_setup: EngineSetup, output_dir: Path
) -> None:
    api, s = engine_setup.api, engine_setup
    port = free_port()
    async with run_agent(output_dir / "e2e", port=port):
        host = await api.ok("POST", "/hosts", {"name": "flappy", "address": "127.0.0.1", "port": port,
                                               "cluster": {"id": s.cluster_id}})  # fmt: skip
        assert host["status"] == "up"

    async def status(wanted: str) -> dict[str, Any] | None:
        found = await api.ok("GET", f"/hosts/{host['id']}")
        return found if found["status"] == wanted else None

    _, took = await eventually(lambda: status("non_responsive"), FOLLOWS_WITHIN, "the host non_responsive")
    print(f"agent stopped -> host non_responsive in {took:.1f} s")
    async with run_agent(output_dir / "e2e", port=port):
        back, took = await eventually(lambda: status("up"), FOLLOWS_WITHIN, "the host up again")
        print(f"agent back -> host up in {took:.1f} s")
    assert back["last_seen"]
    codes = [e["code"] for e in await events(api) if e.get("host", {}).get("id") == host["id"]]
    assert codes[:2] == [HOST_UP, HOST_NON_RESPONSIVE]


async def test_a_deactivate_right_after_the_vm_starts_completes(engine_setup: EngineSetup) -> None:
    """The guest kernel is still booting: the first unplug request is lost, the agent re-sends it."""
    api, s = engine_setup.api, engine_setup
    vm = await boot_vm(s, "early-unplug", [{"name": "nic1"}], wait=False)
    started = time.monotonic()
    try:
        nic = await nic_named(api, vm["id"], "nic1")
        done = await api.ok("POST", f"/vms/{vm['id']}/nics/{nic['id']}/deactivate")
        print(f"deactivate sent at once after start: done {time.monotonic() - started:.1f} s after the start")
        assert done["nic"]["plugged"] is False
    finally:
        await api.ok("POST", f"/vms/{vm['id']}/stop")


async def test_an_unplug_that_timed_out_and_completed_later_converges(
    engine_setup: EngineSetup, output_dir: Path
) -> None:
    api, s = engine_setup.api, engine_setup
    async with run_agent(output_dir / "e2e", unplug_timeout="0.05") as impatient:
        port = int(impatient.url.split(":")[2].split("/")[0])
        host = await api.ok("POST", "/hosts", {"name": "impatient", "address": "127.0.0.1", "port": port,
                                               "cluster": {"id": s.cluster_id}})  # fmt: skip
        vm = await boot_vm(s, "late-unplug", [{"name": "nic1"}], host_id=host["id"])
        try:
            nic = await nic_named(api, vm["id"], "nic1")
            await asyncio.sleep(2)  # plugged at boot: let the guest's driver settle
            status, fault = await api.fault("POST", f"/vms/{vm['id']}/nics/{nic['id']}/deactivate")
            assert status == 502 and fault["data"]["reason"] == "timeout"

            async def unplugged() -> dict[str, Any] | None:
                found = await nic_named(api, vm["id"], "nic1")
                return found if not found["plugged"] else None

            _, took = await eventually(unplugged, FOLLOWS_WITHIN, "the late removal reaching the API")
            print(f"unplug timed out -> API plugged=false {took:.1f} s later")
        finally:
            await api.ok("POST", f"/vms/{vm['id']}/stop")


async def test_when_an_engine_dies_another_follows_its_hosts(
    pg_cluster: Cluster, agent: AgentClient, bridge: str, output_dir: Path
) -> None:
    database_url = pg_cluster.create_database(f"e2e_takeover_{os.getpid()}")
    settings = {"lease_ttl": "4", "monitor_interval": "1"}
    async with (
        run_engine(output_dir / "e2e", database_url, ADMIN_PASSWORD, **settings) as first,
        run_engine(output_dir / "e2e", database_url, ADMIN_PASSWORD, **settings) as second,
    ):
        cluster = await first.ok("POST", "/clusters", {"name": "takeover"})
        port = int(agent.url.split(":")[2].split("/")[0])
        await first.ok("POST", "/hosts", {"name": "shared-host", "address": "127.0.0.1", "port": port,
                                          "cluster": {"id": cluster["id"]}})  # fmt: skip
        await first.ok("POST", "/networks", {"name": "takeover", "bridge": bridge, "cluster": {"id": cluster["id"]}})
        vm = await first.ok("POST", "/vms", guest.engine_vm("takeover-vm", cluster["id"]))
        await first.ok("POST", f"/vms/{vm['id']}/start")
        conn = await asyncpg.connect(database_url)
        try:
            holder, _ = await eventually(lambda: conn.fetchval("SELECT engine_id FROM host_leases"), 10, "a lease")
        finally:
            await conn.close()
        pid = int(holder.split(":")[1])
        survivor = {first.pid: second, second.pid: first}[pid]  # the lease holder is one of ours
        os.kill(pid, signal.SIGKILL)
        await virsh("destroy", vm["id"])

        async def down() -> dict[str, Any] | None:
            found = await survivor.ok("GET", f"/vms/{vm['id']}")
            return found if found["status"] == "down" else None

        _, took = await eventually(down, 20, "the surviving engine showing the VM down")
        print(f"engine killed, VM destroyed -> the other engine shows it down in {took:.1f} s")
