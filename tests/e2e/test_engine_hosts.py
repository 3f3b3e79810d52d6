"""When a host does not answer, the engine says so and changes nothing."""

from __future__ import annotations

import contextlib
from pathlib import Path

import libvirt

from devtools import guest
from devtools.agent_proc import run_agent
from tests.e2e.conftest import EngineSetup
from tests.e2e.test_engine_story import db_nics, live_macs


async def test_a_host_that_does_not_answer_gets_a_clear_error_and_nothing_changes(
    engine_setup: EngineSetup, libvirt_conn: libvirt.virConnect, output_dir: Path
) -> None:
    api, s = engine_setup.api, engine_setup
    guest.ensure_built()
    async with run_agent(output_dir / "e2e") as short_lived:
        port = int(short_lived.url.split(":")[2].split("/")[0])
        host = await api.ok("POST", "/hosts", {"name": "flaky", "address": "127.0.0.1", "port": port,
                                               "cluster": {"id": s.cluster_id}})  # fmt: skip
        vm = await api.ok("POST", "/vms", guest.engine_vm("on-flaky", s.cluster_id))
        nic = await api.ok("POST", f"/vms/{vm['id']}/nics", {"name": "n", "vnic_profile": {"id": s.profile_id},
                                                             "plugged": False})  # fmt: skip
        placement = {"vm": {"placement_policy": {"hosts": {"host": [{"id": host["id"]}]}}}}
        await api.ok("POST", f"/vms/{vm['id']}/start", placement)
    # The agent is gone; the VM still runs in libvirt.
    try:
        before = await db_nics(s, vm["id"])
        status, fault = await api.fault("POST", f"/vms/{vm['id']}/nics/{nic['id']}/activate")
        assert status == 503 and fault["code"] == "HOST_NOT_RESPONDING"
        assert "flaky" in fault["detail"] and "not responding" in fault["detail"]
        assert await db_nics(s, vm["id"]) == before
        assert nic["mac"]["address"] not in live_macs(libvirt_conn, vm["id"])
        status, fault = await api.fault("POST", f"/vms/{vm['id']}/stop")
        assert status == 503
        assert (await api.ok("GET", f"/vms/{vm['id']}"))["status"] == "up"  # unchanged: we do not know it stopped
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            libvirt_conn.lookupByUUIDString(vm["id"]).destroy()
