"""Port mirroring end to end through the REST API: a NIC on a vNIC profile with port_mirroring is
hot-plugged into a running VM and its tap sees the traffic between two other ports of the
network's bridge (raw Ethernet frames between network namespaces this test makes; no IP address
anywhere), while a NIC on the network's plain profile does not; deactivating it removes the
mirroring (the tc filters are gone from every port, and the frames reach no tap of the VM)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import libvirt
import pytest
from lxml import etree

from devtools import guest, netdev
from engine.api.paths import API
from tests.e2e.conftest import EngineSetup, boot_vm
from tests.e2e.netns import NsHost, add_host, remove_host, seen
from vdsm_agent.live_xml import parse_nics

BRIDGE = "hpt-emir0"
SENDER, RECEIVER = "hpt-nse", "hpt-nsf"


@pytest.fixture(scope="module")
def mirrored_bridge() -> Iterator[tuple[NsHost, NsHost]]:
    netdev.delete(BRIDGE)
    netdev.ensure_bridge(BRIDGE)
    a = add_host(BRIDGE, SENDER, "02:00:00:00:0e:01")
    b = add_host(BRIDGE, RECEIVER, "02:00:00:00:0f:01")
    yield a, b
    remove_host(SENDER)
    remove_host(RECEIVER)
    netdev.delete(BRIDGE)


@pytest.fixture(scope="module")
async def mirror_setup(
    engine_setup: EngineSetup, mirrored_bridge: tuple[NsHost, NsHost]
) -> AsyncIterator[dict[str, Any]]:
    """A network on the bridge, a mirroring profile of it (added in XML, as the SDK sends it), and
    a running VM of the engine."""
    s = engine_setup
    network = await s.api.ok(
        "POST", "/networks", {"name": "watched", "bridge": BRIDGE, "cluster": {"id": s.cluster_id}}
    )
    (plain,) = (await s.api.ok("GET", f"/networks/{network['id']}/vnicprofiles"))["vnic_profile"]
    headers = {"Authorization": f"Bearer {s.api.token}", "Content-Type": "application/xml", "Version": "4"}
    body = "<vnic_profile><name>watch</name><port_mirroring>true</port_mirroring></vnic_profile>"
    url = f"{s.api.base}{API}/networks/{network['id']}/vnicprofiles"
    async with s.api.session.post(url, data=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        made = etree.fromstring(await resp.read())
    assert made.findtext("port_mirroring") == "true" and made.find("network").get("id") == network["id"]
    vm = await boot_vm(s, "mirror-vm")
    yield {"vm": vm, "mirror": made.get("id"), "plain": plain["id"], "hosts": mirrored_bridge}
    with contextlib.suppress(AssertionError):
        await s.api.ok("POST", f"/vms/{vm['id']}/stop")


def tap_of(conn: libvirt.virConnect, vm_id: str, mac: str) -> str:
    (placed,) = [n for n in parse_nics(conn.lookupByUUIDString(vm_id).XMLDesc(0)) if n.mac == mac]
    return placed.tap


def mirrored_to(port: str) -> list[str]:
    """The taps the ingress of bridge port ``port`` is mirrored to (tc mirred filters)."""
    shown = subprocess.run(["tc", "filter", "show", "dev", port, "ingress"], capture_output=True, text=True).stdout
    return [
        line.split("Mirror to device ")[1].split(")")[0] for line in shown.splitlines() if "Mirror to device" in line
    ]


async def test_a_nic_on_a_mirroring_profile_sees_the_bridges_traffic_until_it_is_unplugged(
    engine_setup: EngineSetup, mirror_setup: dict[str, Any], libvirt_conn: libvirt.virConnect
) -> None:
    s, vm_id = engine_setup, mirror_setup["vm"]["id"]
    a, b = mirror_setup["hosts"]
    nics = f"/vms/{vm_id}/nics"
    watch = await s.api.ok("POST", nics, {"name": "watch", "vnic_profile": {"id": mirror_setup["mirror"]}})
    plain = await s.api.ok("POST", nics, {"name": "plain", "vnic_profile": {"id": mirror_setup["plain"]}})
    assert watch["plugged"] and plain["plugged"]
    watch_tap = tap_of(libvirt_conn, vm_id, watch["mac"]["address"])
    plain_tap = tap_of(libvirt_conn, vm_id, plain["mac"]["address"])
    for port in (f"{SENDER}-br", f"{RECEIVER}-br", plain_tap):
        assert mirrored_to(port) == [watch_tap], port  # every other port of the bridge, once

    mirrored, not_mirrored = await seen(a, b, "E2E-A-TO-B", watch_tap, plain_tap)
    assert mirrored == {f"E2E-A-TO-B-{i}" for i in range(5)}  # all of a's frames to b, on the mirror's tap
    assert not_mirrored == set()

    await asyncio.to_thread(guest.wait_for_console, mirror_setup["vm"]["console"], watch["mac"]["address"], 30.0)
    off = await s.api.ok("POST", f"{nics}/{watch['id']}/deactivate")
    assert not off["nic"]["plugged"]
    for port in (f"{SENDER}-br", f"{RECEIVER}-br", plain_tap):
        assert mirrored_to(port) == [], port  # mirroring removed with the NIC
    taps = [n.tap for n in parse_nics(libvirt_conn.lookupByUUIDString(vm_id).XMLDesc(0))]
    assert watch_tap not in taps
    assert await seen(a, b, "E2E-AFTER", *taps) == [set() for _ in taps]  # no tap of the VM gets them now

    # Plugged again: mirrored again (the profile, not the NIC, says so).
    await s.api.ok("POST", f"{nics}/{watch['id']}/activate")
    again = tap_of(libvirt_conn, vm_id, watch["mac"]["address"])
    assert mirrored_to(f"{SENDER}-br") == [again]
    assert (await seen(a, b, "E2E-AGAIN", again))[0] == {f"E2E-AGAIN-{i}" for i in range(5)}
