"""Port mirroring that outlives the agent: records in the domain's metadata (pure round trip),
tc's view read back (pure), and the reconciling PortMirror against an in-memory kernel: new
ports are mirrored, the agent's empty qdiscs go, a restarted agent adopts what it finds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

import pytest

from shared_schema.nic import NicRef, NicSpec
from shared_schema.vm import VmSpec
from vdsm_agent.domain_xml import build_domain, to_string
from vdsm_agent.hypervisor import Domain
from vdsm_agent.mirroring import (
    COOKIE,
    MIRROR_KEY,
    MIRROR_NS,
    HostView,
    MirrorError,
    MirrorRecord,
    PortFilters,
    PortMirror,
    parse_filters,
    parse_records,
    records_xml,
)
from vdsm_agent.nics import NicService
from vdsm_agent.simulated import SimulatedHypervisor

# --- Records in the domain's metadata ------------------------------------------------------------

RECORDS = [
    MirrorRecord("ua-blue", "vnet3", ("br-blue",)),
    MirrorRecord("ua-both", "vnet7", ("br-blue", "br-red")),
]


def live_domain(metadata: str) -> str:
    return f"<domain type='qemu'><name>m</name><metadata>{metadata}</metadata><devices/></domain>"


def test_records_round_trip_through_the_metadata_as_libvirt_shows_it() -> None:
    xml = records_xml(RECORDS)
    assert xml is not None
    # libvirt puts the element and its children in our namespace, under our prefix.
    shown = xml.replace("<mirroring>", f"<{MIRROR_KEY}:mirroring xmlns:{MIRROR_KEY}='{MIRROR_NS}'>")
    shown = shown.replace("</mirroring>", f"</{MIRROR_KEY}:mirroring>")
    shown = shown.replace("<nic ", f"<{MIRROR_KEY}:nic ").replace("</nic>", f"</{MIRROR_KEY}:nic>")
    shown = shown.replace("<bridge ", f"<{MIRROR_KEY}:bridge ")
    assert parse_records(live_domain(shown)) == RECORDS


async def test_records_round_trip_through_set_metadata() -> None:
    hv = SimulatedHypervisor()
    vm_id = str(uuid.uuid4())
    await hv.create(to_string(build_domain(VmSpec(vm_id, "meta"))))
    await hv.set_metadata(vm_id, MIRROR_NS, MIRROR_KEY, records_xml(RECORDS))
    assert parse_records((await hv.domain(vm_id)).xml) == RECORDS
    await hv.set_metadata(vm_id, MIRROR_NS, MIRROR_KEY, None)
    assert parse_records((await hv.domain(vm_id)).xml) == []


def test_no_records_is_no_element_and_foreign_or_malformed_metadata_is_ignored() -> None:
    assert records_xml([]) is None
    foreign = "<other:mirroring xmlns:other='urn:someone-else'><other:nic alias='a' tap='t'/></other:mirroring>"
    malformed = (
        f"<m:mirroring xmlns:m='{MIRROR_NS}'>"
        "<m:nic alias='ua-bad' tap='../x'><m:bridge name='br0'/></m:nic>"  # not a device name
        "<m:nic alias='ua-none' tap='vnet1'/>"  # mirrors no bridge
        "<m:nic alias='ua-ok' tap='vnet2'><m:bridge name='br0'/></m:nic></m:mirroring>"
    )
    assert parse_records(live_domain(foreign)) == []
    assert parse_records(live_domain(malformed)) == [MirrorRecord("ua-ok", "vnet2", ("br0",))]


def test_tcs_view_of_a_port_tells_the_agents_filters_from_anyones() -> None:
    # `tc -j filter show dev P ingress` with one filter of the agent's whose tap is gone ('*'),
    # one of the agent's, and libvirt's own police filter at pref 1.
    shown = f"""[
      {{"parent":"ffff:","protocol":"all","pref":1,"kind":"u32","chain":0}},
      {{"parent":"ffff:","protocol":"all","pref":1,"kind":"u32","chain":0,"options":{{"fh":"800::800",
        "actions":[{{"order":1,"kind":"police","index":1}}]}}}},
      {{"parent":"ffff:","protocol":"all","pref":40000,"kind":"u32","chain":0}},
      {{"parent":"ffff:","protocol":"all","pref":40000,"kind":"u32","chain":0,"options":{{"fh":"800::800",
        "actions":[{{"order":1,"kind":"mirred","mirred_action":"mirror","direction":"egress","to_dev":"*",
        "cookie":"{COOKIE}"}}]}}}},
      {{"parent":"ffff:","protocol":"all","pref":40001,"kind":"u32","chain":0,"options":{{"fh":"800::800",
        "actions":[{{"order":1,"kind":"mirred","to_dev":"vnet4","cookie":"{COOKIE}"}}]}}}},
      {{"parent":"ffff:","protocol":"all","pref":40002,"kind":"u32","chain":0,"options":{{"fh":"800::800",
        "actions":[{{"order":1,"kind":"mirred","to_dev":"vnet5","cookie":"0badc0de"}}]}}}}
    ]"""
    assert parse_filters(shown) == PortFilters(frozenset({1, 40000, 40001, 40002}), ((40000, "*"), (40001, "vnet4")))
    assert parse_filters("") == parse_filters("[]") == parse_filters("not json") == PortFilters()


# --- The reconciling PortMirror against an in-memory kernel ------------------------------------------


class FakeKernel:  # a HostNet
    """Bridges and their ports, devices with an ifindex, ingress qdiscs and filters, in memory.
    The simulated hypervisor's taps are devices (and ports of no bridge: NICs here are bridgeless)."""

    def __init__(self, hv: SimulatedHypervisor):
        self._hv = hv
        self.bridges: dict[str, list[str]] = {}
        self.devices: dict[str, int] = {}
        self.qdiscs: set[str] = set()  # ports with an ingress qdisc
        self.rules: dict[str, dict[int, tuple[str, bool]]] = {}  # port -> pref -> (target, ours)
        self.tc_runs = 0
        self._next = 100

    def add_port(self, bridge: str, port: str) -> None:
        self._next += 1
        self.devices[port] = self._next
        self.bridges.setdefault(bridge, []).append(port)

    def delete_port(self, port: str) -> None:
        del self.devices[port]
        for ports in self.bridges.values():
            if port in ports:
                ports.remove(port)
        self.qdiscs.discard(port)
        self.rules.pop(port, None)

    def mirrored(self, port: str) -> set[str]:
        return {target for target, ours in self.rules.get(port, {}).values() if ours}

    def _ifindex(self, dev: str) -> int | None:
        if dev in self.devices:
            return self.devices[dev]
        return 5000 + sorted(self._hv.taps()).index(dev) if dev in self._hv.taps() else None

    async def look(self, bridges: Iterable[str] | None, devices: Iterable[str]) -> HostView:
        names = list(self.bridges) if bridges is None else [b for b in bridges if b in self.bridges]
        ports = {b: tuple(sorted(self.bridges[b])) for b in names}
        asked = {*devices, *(p for found in ports.values() for p in found)}
        return HostView(ports, {d: i for d in asked if (i := self._ifindex(d)) is not None})

    async def filters(self, port: str) -> PortFilters:
        self.tc_runs += 1
        found = self.rules.get(port, {})
        return PortFilters(frozenset(found), tuple(sorted((p, t) for p, (t, ours) in found.items() if ours)))

    async def add_filter(self, port: str, pref: int, tap: str) -> None:
        self.tc_runs += 1
        if self._ifindex(tap) is None:
            raise MirrorError(f"cannot mirror {port} to {tap}: Cannot find device")
        self.qdiscs.add(port)
        assert pref not in self.rules.get(port, {}), "a preference in use was picked again"
        self.rules.setdefault(port, {})[pref] = (tap, True)

    async def delete_filter(self, port: str, pref: int) -> None:
        self.tc_runs += 1
        self.rules.get(port, {}).pop(pref, None)

    async def drop_ingress_if_empty(self, port: str) -> bool:
        self.tc_runs += 1
        if port in self.qdiscs and not self.rules.get(port):
            self.qdiscs.discard(port)
            return True
        return False


def nic_spec(n: int, promisc: str = "") -> NicSpec:
    params = {"type": "interface", "device": "bridgeless", "macAddr": f"00:1a:4a:19:00:{n:02x}", "nicModel": "pv",
              "alias": f"ua-m{n}"}  # fmt: skip
    return NicSpec.from_params({**params, "promisc": promisc} if promisc else params)


class Host:
    """A simulated hypervisor with one VM, a fake kernel with bridge br0 (ports p1, p2), an agent."""

    def __init__(self) -> None:
        self.hv = SimulatedHypervisor()
        self.kernel = FakeKernel(self.hv)
        for port in ("p1", "p2"):
            self.kernel.add_port("br0", port)
        self.vm_id = str(uuid.uuid4())

    async def start(self) -> Host:
        await self.hv.create(to_string(build_domain(VmSpec(self.vm_id, "mirror-vm"))))
        return self

    async def agent(self) -> tuple[NicService, PortMirror]:
        """A (new) agent on this host, started as app.py does: restore from the domains first."""
        mirror = PortMirror(self.hv, self.kernel)
        nics = NicService(self.hv, mirror, unplug_timeout=1.0)
        await self.hv.open(nics.on_device_event)
        await mirror.restore(await self.hv.domains())
        return nics, mirror

    async def records(self) -> list[MirrorRecord]:
        return parse_records((await self.hv.domain(self.vm_id)).xml)


async def test_plugging_a_promisc_nic_mirrors_every_port_and_records_it_in_the_metadata() -> None:
    host = await Host().start()
    nics, mirror = await host.agent()
    tap = (await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))).nic.tap
    assert host.kernel.mirrored("p1") == host.kernel.mirrored("p2") == {tap}
    assert await host.records() == [MirrorRecord("ua-m1", tap, ("br0",))]
    assert mirror.records(host.vm_id) == await host.records()

    await nics.hotunplug(host.vm_id, NicRef("ua-m1", None))
    assert not any(host.kernel.rules.values())
    assert host.kernel.qdiscs == set()  # the agent's qdiscs go with its last filter
    assert await host.records() == []


async def test_a_missing_bridge_is_refused_and_nothing_is_recorded() -> None:
    host = await Host().start()
    nics, mirror = await host.agent()
    await nics.hotplug(host.vm_id, nic_spec(1))
    with pytest.raises(MirrorError, match="'br-nosuch' does not exist"):
        await mirror.mirror(host.vm_id, "ua-m1", "vnet0", ["br0", "br-nosuch"])
    assert await host.records() == [] and mirror.records(host.vm_id) == []
    assert not any(host.kernel.rules.values())


async def test_a_port_that_joins_later_or_comes_back_is_mirrored_and_a_leaving_one_forgotten() -> None:
    host = await Host().start()
    nics, mirror = await host.agent()
    tap = (await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))).nic.tap
    host.kernel.add_port("br0", "p3")
    assert host.kernel.mirrored("p3") == set()
    await mirror.sync()
    assert host.kernel.mirrored("p3") == {tap}

    host.kernel.delete_port("p1")
    host.kernel.add_port("br0", "p1")  # the same name, a new device: its filters are gone
    await mirror.sync()
    assert host.kernel.mirrored("p1") == {tap}

    host.kernel.delete_port("p2")
    await mirror.sync()
    assert "p2" not in mirror.applied()


async def test_a_sync_with_nothing_new_runs_no_tc() -> None:
    host = await Host().start()
    nics, mirror = await host.agent()
    await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))
    runs = host.kernel.tc_runs
    for _ in range(3):
        await mirror.sync()
    assert host.kernel.tc_runs == runs


async def test_a_qdisc_that_still_holds_someone_elses_filter_stays() -> None:
    host = await Host().start()
    host.kernel.qdiscs.add("p1")
    host.kernel.rules["p1"] = {1: ("police", False)}  # e.g. libvirt's <bandwidth>
    nics, _ = await host.agent()
    await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))
    assert 1 in host.kernel.rules["p1"] and len(host.kernel.rules["p1"]) == 2  # a pref of its own
    await nics.hotunplug(host.vm_id, NicRef("ua-m1", None))
    assert host.kernel.rules["p1"] == {1: ("police", False)}
    assert host.kernel.qdiscs == {"p1"}


async def test_a_restarted_agent_restores_from_the_metadata_without_duplicates() -> None:
    host = await Host().start()
    nics, _ = await host.agent()
    tap = (await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))).nic.tap
    before = {p: dict(f) for p, f in host.kernel.rules.items()}

    # The agent restarts: the filters stayed, and the new one adopts them as they are.
    nics, mirror = await host.agent()
    assert mirror.records(host.vm_id) == [MirrorRecord("ua-m1", tap, ("br0",))]
    assert host.kernel.rules == before

    # It restarts again after the filters were lost (the ports came back, say): it puts them back.
    for port in ("p1", "p2"):
        host.kernel.delete_port(port)
        host.kernel.add_port("br0", port)
    nics, mirror = await host.agent()
    assert host.kernel.mirrored("p1") == host.kernel.mirrored("p2") == {tap}

    # And it knows what to take away.
    await nics.hotunplug(host.vm_id, NicRef("ua-m1", None))
    assert not any(host.kernel.rules.values()) and host.kernel.qdiscs == set()


async def test_restore_drops_records_of_nics_that_left_and_a_host_scan_removes_stale_filters() -> None:
    host = await Host().start()
    nics, _ = await host.agent()
    await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))
    await nics.hotplug(host.vm_id, nic_spec(2, promisc="br0"))
    # While no agent runs: ua-m2 leaves, and a filter of a VM long gone lingers on p2.
    dom = host.hv._get(host.vm_id)
    dom.interfaces[:] = [i for i in dom.interfaces if i.alias != "ua-m2"]
    # and filters of VMs long gone linger: on p2, and on q1 of a bridge no record names.
    host.kernel.rules["p2"][49999] = ("*", True)
    host.kernel.add_port("br9", "q1")
    host.kernel.qdiscs.add("q1")
    host.kernel.rules["q1"] = {40000: ("*", True)}

    _, mirror = await host.agent()
    assert [r.alias for r in mirror.records(host.vm_id)] == ["ua-m1"]
    assert [r.alias for r in await host.records()] == ["ua-m1"]  # the metadata says so too
    tap1 = mirror.records(host.vm_id)[0].tap
    assert host.kernel.mirrored("p1") == host.kernel.mirrored("p2") == {tap1}  # p2 was read again
    assert host.kernel.mirrored("q1") == {"*"}  # not looked at on start
    await mirror.restore(await host.hv.domains(), scan_host=True)  # the first periodic pass
    assert host.kernel.mirrored("q1") == set() and "q1" not in host.kernel.qdiscs
    assert host.kernel.mirrored("p1") == host.kernel.mirrored("p2") == {tap1}


async def test_a_removal_nobody_waited_for_takes_its_mirroring_along() -> None:
    host = await Host().start()
    nics, mirror = await host.agent()
    await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))
    await host.hv.detach(host.vm_id, "ua-m1")  # behind the agent's back (virsh detach-device)
    for _ in range(100):
        if not mirror.records(host.vm_id):
            break
        await asyncio.sleep(0.01)
    assert await host.records() == []
    assert not any(host.kernel.rules.values()) and host.kernel.qdiscs == set()


async def test_a_record_dropped_because_its_tap_left_is_dropped_from_the_metadata_too() -> None:
    host = await Host().start()
    nics, mirror = await host.agent()
    await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))
    await nics.hotplug(host.vm_id, nic_spec(2, promisc="br0"))
    dom = host.hv._get(host.vm_id)  # ua-m1 leaves, and its event has not been handled yet
    dom.interfaces[:] = [i for i in dom.interfaces if i.alias != "ua-m1"]
    await mirror.sync()  # the periodic pass sees its tap gone before the unplug's own clean-up
    assert [r.alias for r in mirror.records(host.vm_id)] == ["ua-m2"]
    assert [r.alias for r in await host.records()] == ["ua-m2"]
    await mirror.unmirror(host.vm_id, "ua-m1")  # the unplug's clean-up then finds nothing to do
    assert [r.alias for r in await host.records()] == ["ua-m2"]


async def test_records_whose_tap_is_gone_are_dropped_on_sync() -> None:
    host = await Host().start()
    nics, mirror = await host.agent()
    await nics.hotplug(host.vm_id, nic_spec(1, promisc="br0"))
    await host.hv.destroy(host.vm_id)  # behind the agent's back: the taps go with the VM
    await mirror.sync()
    assert mirror.records(host.vm_id) == []
    assert not any(host.kernel.rules.values()) and host.kernel.qdiscs == set()


async def test_restore_ignores_domains_that_are_not_running() -> None:
    hv = SimulatedHypervisor()
    kernel = FakeKernel(hv)
    kernel.add_port("br0", "p1")
    record = "<m:nic alias='ua-x' tap='vnet0'><m:bridge name='br0'/></m:nic>"
    xml = live_domain(f"<m:mirroring xmlns:m='{MIRROR_NS}'>{record}</m:mirroring>")
    mirror = PortMirror(hv, kernel)
    await mirror.restore([Domain(str(uuid.uuid4()), "off", "Down", xml)])
    assert not any(kernel.rules.values())
