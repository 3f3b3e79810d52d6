"""Two engine processes on one database, racing plug/unplug/update/remove on one running VM."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from pathlib import Path
from typing import Any

import asyncpg
import libvirt

from devtools import guest
from devtools.engine_proc import run_engine
from tests.e2e.conftest import ADMIN_PASSWORD, EngineSetup
from tests.e2e.test_engine_story import live_macs


async def test_two_engines_racing_on_one_running_vm_stay_consistent(
    engine_setup: EngineSetup, libvirt_conn: libvirt.virConnect, output_dir: Path
) -> None:
    s = engine_setup
    guest.ensure_built()
    async with run_engine(output_dir / "e2e", s.database_url, ADMIN_PASSWORD) as other:
        a = s.api
        vm = await a.ok("POST", "/vms", guest.engine_vm("race", s.cluster_id))
        console = guest.console_of(vm["id"])
        vm_id = vm["id"]
        await a.ok("POST", f"/vms/{vm_id}/start")
        try:
            await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)
            nics = [
                await a.ok("POST", f"/vms/{vm_id}/nics", {"name": f"r{i}", "interface": "e1000",
                                                          "vnic_profile": {"id": s.profile_id}, "plugged": False})
                for i in range(4)
            ]  # fmt: skip
            rng = random.Random(7)
            engines = itertools.cycle([a, other])
            requests: list[tuple[str, str, str, Any]] = []
            for n in nics * 6:
                verb = rng.choice(["activate", "deactivate", "activate", "rename", "remove"])
                base = f"/vms/{vm_id}/nics/{n['id']}"
                if verb == "rename":
                    requests.append((n["id"], "PUT", base, {"name": f"{n['name']}-{rng.randint(0, 3)}"}))
                elif verb == "remove":
                    requests.append((n["id"], "DELETE", base, None))
                else:
                    requests.append((n["id"], "POST", f"{base}/{verb}", None))
            answers = await asyncio.gather(*(next(engines).request(m, p, b) for _, m, p, b in requests))
            statuses = {st for st, _ in answers}
            assert statuses <= {200, 404, 409}, [x for x in answers if x[0] not in (200, 404, 409)]
            assert 200 in statuses

            conn = await asyncpg.connect(s.database_url)
            try:
                rows = await conn.fetch(
                    "SELECT id::text, name, mac_addr::text AS mac, active, address"
                    " FROM vm_interface_view WHERE vm_id = $1",
                    vm_id,
                )
                events = await conn.fetch(
                    "SELECT nic_id::text, log_type FROM audit_log WHERE vm_id = $1 AND log_type IN (1012, 1014, 930) "
                    "ORDER BY id",
                    vm_id,
                )
            finally:
                await conn.close()
            # The race really hot-plugged (which deactivates meet a plugged NIC depends on the order
            # in which the concurrent requests get the VM's lock: not every run unplugs).
            assert 1012 in {e["log_type"] for e in events}
            db = {r["id"]: r for r in rows}
            live = live_macs(libvirt_conn, vm_id)
            # The hypervisor and the database agree on what is plugged and where.
            assert {r["mac"] for r in rows if r["active"]} == set(live)
            for r in rows:
                if r["active"]:
                    assert r["address"] == live[r["mac"]]
                else:
                    assert r["address"] == ""
            plugged_addresses = [r["address"] for r in rows if r["active"]]
            assert len(set(plugged_addresses)) == len(plugged_addresses)
            assert len({r["mac"] for r in rows}) == len(rows) and len({r["name"] for r in rows}) == len(rows)
            # The state is what the log of successful operations says.
            last: dict[str, int] = {}
            for e in events:
                last[e["nic_id"]] = e["log_type"]
            for n in nics:
                if last.get(n["id"]) == 930:
                    assert n["id"] not in db  # removed
                elif n["id"] in db:
                    assert db[n["id"]]["active"] == (last.get(n["id"]) == 1012)
            removed_ok = {
                rid for (rid, m, _, _), (st, _) in zip(requests, answers, strict=True) if m == "DELETE" and st == 200
            }
            assert removed_ok == {n["id"] for n in nics} - set(db)
        finally:
            with contextlib.suppress(AssertionError):
                await a.ok("POST", f"/vms/{vm_id}/stop")
