"""Real libvirtd on qemu:///system and the tiny guest: booted once per session and reused."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from devtools import guest, netdev, paths
from devtools.agent_proc import AgentClient, run_agent
from devtools.engine_proc import EngineClient, run_engine
from devtools.pg import Cluster
from vdsm_agent.live_xml import parse_nics

LIBVIRT_URI = "qemu:///system"
GUEST_NAME = "hotplug-e2e-guest"
BRIDGE = "hpt-br0"
_databases = itertools.count()


@dataclass
class Guest:
    conn: libvirt.virConnect
    uuid: str
    console: Path

    @property
    def domain(self) -> libvirt.virDomain:
        # Looked up per use rather than kept: a virDomain held past the session would keep
        # the connection (and its event watches) alive after the event loop has closed.
        return self.conn.lookupByUUIDString(self.uuid)

    def console_size(self) -> int:
        return self.console.stat().st_size if self.console.exists() else 0

    async def wait_console(self, text: str, after: int = 0, timeout: float = 60) -> str:
        return await asyncio.to_thread(guest.wait_for_console, self.console, text, timeout, after)


def _stop_guests_left_by_killed_runs(conn: libvirt.virConnect) -> None:
    """Guests of this checkout's earlier test runs that were killed before their teardown: they
    write their consoles into this checkout's state directory (make run's demo VM is spared)."""
    ours = str(paths.consoles_dir())
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        with contextlib.suppress(libvirt.libvirtError):
            if ours in dom.XMLDesc(0) and dom.name() != "hotplug-demo":
                dom.destroy()


class Reconnecting:
    """A libvirt connection that opens itself again when libvirtd restarted (test_faults.py
    restarts it under everything); used as a virConnect."""

    def __init__(self, uri: str):
        self._uri = uri
        self._conn = libvirt.open(uri)

    def __getattr__(self, name: str) -> Any:
        if not self._conn.isAlive():
            self._conn = libvirt.open(self._uri)
        return getattr(self._conn, name)


@pytest.fixture(scope="session")
async def libvirt_conn() -> AsyncIterator[libvirt.virConnect]:
    import libvirtaio

    # Events (DEVICE_ADDED / DEVICE_REMOVED) are delivered into this session's asyncio loop.
    events = libvirtaio.virEventRegisterAsyncIOImpl()
    conn = Reconnecting(LIBVIRT_URI)
    _stop_guests_left_by_killed_runs(conn)  # type: ignore[arg-type]
    yield conn  # type: ignore[misc]
    conn.close()
    # libvirt releases the connection's watches from within the loop: give it a moment
    # before the loop closes (drain() alone can wait for ever on a callback never scheduled).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(events.drain(), 2)


@pytest.fixture(scope="session")
def bridge() -> Iterator[str]:
    netdev.ensure_bridge(BRIDGE)
    yield BRIDGE
    netdev.delete(BRIDGE)


@pytest.fixture(scope="session")
def consoles(output_dir: Path) -> Iterator[Path]:
    """Where guests write their serial consoles: the checkout's state directory, which QEMU can
    reach wherever the checkout lives.  Copied to test-output/e2e/consoles/ at the end."""
    paths.ensure()
    folder = paths.consoles_dir()
    yield folder
    kept = output_dir / "e2e" / "consoles"
    kept.mkdir(parents=True, exist_ok=True)
    for log in folder.glob("*.log"):
        with contextlib.suppress(OSError):
            shutil.copyfile(log, kept / log.name)


@pytest.fixture(scope="session")
async def test_guest(libvirt_conn: libvirt.virConnect, consoles: Path) -> AsyncIterator[Guest]:
    with contextlib.suppress(libvirt.libvirtError):  # a killed run may have left its guest
        libvirt_conn.lookupByName(GUEST_NAME).destroy()
    guest.ensure_built()
    spec = guest.spec(GUEST_NAME)
    console = guest.console_of(spec.vm_id)
    console.unlink(missing_ok=True)
    libvirt_conn.createXML(guest.domain_xml(spec), 0)
    booted = Guest(libvirt_conn, spec.vm_id, console)
    await booted.wait_console(guest.READY_MARKER, timeout=120)
    yield booted
    with contextlib.suppress(libvirt.libvirtError):
        booted.domain.destroy()


@pytest.fixture(scope="session")
async def agent(output_dir: Path) -> AsyncIterator[AgentClient]:
    """A real agent process on qemu:///system with VDSM's default 30 s unplug timeout."""
    async with run_agent(output_dir / "e2e") as client:
        yield client


async def _detach_all(g: Guest, keep: set[str]) -> None:
    """Unplug what a test left on the shared guest, so the next test starts clean."""
    for nic in parse_nics(g.domain.XMLDesc(0)):
        if nic.alias not in keep:
            with contextlib.suppress(libvirt.libvirtError):
                g.domain.detachDeviceAlias(nic.alias, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    for _ in range(100):
        if {n.alias for n in parse_nics(g.domain.XMLDesc(0))} <= keep:
            return
        await asyncio.sleep(0.1)


@pytest.fixture
async def clean_guest(test_guest: Guest) -> AsyncIterator[Guest]:
    """The shared guest, with every NIC a test plugged removed again afterwards."""
    before = {n.alias for n in parse_nics(test_guest.domain.XMLDesc(0))}
    yield test_guest
    await _detach_all(test_guest, before)


@dataclass
class EngineSetup:
    api: EngineClient
    agent: AgentClient
    cluster_id: str
    host_id: str
    network_id: str
    profile_id: str
    database_url: str


ADMIN_PASSWORD = "e2e-secret"


@pytest.fixture(scope="module")
async def engine_setup(
    pg_cluster: Cluster, agent: AgentClient, bridge: str, output_dir: Path
) -> AsyncIterator[EngineSetup]:
    """A real engine on its own database, with a 4.7 cluster, this host's agent and a network on the test bridge."""
    database_url = pg_cluster.create_database(f"e2e_{os.getpid()}_{next(_databases)}")
    async with run_engine(output_dir / "e2e", database_url, ADMIN_PASSWORD, readonly_password="look") as api:
        cluster = await api.ok("POST", "/clusters", {"name": "e2e", "version": {"major": 4, "minor": 7}})
        port = agent.url.split(":")[2].split("/")[0]
        host = await api.ok("POST", "/hosts", {"name": "this-host", "address": "127.0.0.1", "port": int(port),
                                               "cluster": {"id": cluster["id"]}})  # fmt: skip
        assert host["status"] == "up"
        network = await api.ok("POST", "/networks", {"name": "red", "bridge": bridge, "cluster": {"id": cluster["id"]}})
        profiles = (await api.ok("GET", "/vnicprofiles"))["vnic_profile"]
        profile = next(p for p in profiles if p["network"]["id"] == network["id"])
        yield EngineSetup(api, agent, cluster["id"], host["id"], network["id"], profile["id"], database_url)


async def boot_vm(
    s: EngineSetup,
    name: str,
    nics: list[dict[str, Any]] | None = None,
    host_id: str | None = None,
    wait: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """A VM of the engine booting the tiny guest with ``nics`` (on the setup's network), started
    on ``host_id`` (default: the setup's own host; other tests register hosts that come and go)
    and, unless ``wait`` is false, booted to its ready marker.  ``fields`` go into its POST body
    (``bios``, ``os``…).  Its serial console is under "console"."""
    api = s.api
    guest.ensure_built()
    vm = await api.ok("POST", "/vms", {**guest.engine_vm(name, s.cluster_id), **fields})
    console = guest.console_of(vm["id"])
    for nic in nics or []:
        await api.ok("POST", f"/vms/{vm['id']}/nics", {"vnic_profile": {"id": s.profile_id}, **nic})
    placement = {"vm": {"placement_policy": {"hosts": {"host": [{"id": host_id or s.host_id}]}}}}
    await api.ok("POST", f"/vms/{vm['id']}/start", placement)
    if wait:
        await asyncio.to_thread(guest.wait_for_console, console, guest.READY_MARKER, 120.0)
    return {**vm, "console": console}
