"""hotplugNic / hotunplugNic through a real agent process, on real libvirtd and the tiny guest."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree

from devtools import netdev
from devtools.agent_proc import AgentClient
from tests.e2e.conftest import Guest
from vdsm_agent.live_xml import LiveNic, parse_nics

_macs = itertools.count(0x10)
# Every libvirt model the agent offers (Host.getCapabilities' nicModels): all run on i440fx here.
MODELS = ["virtio", "e1000", "e1000e", "rtl8139"]


def new_mac() -> str:
    n = next(_macs)
    return f"52:54:00:a9:{n >> 8:02x}:{n & 0xFF:02x}"


def nic(bridge: str, mac: str, model: str = "pv", **extra: Any) -> dict[str, Any]:
    return {"type": "interface", "device": "bridge", "network": bridge, "macAddr": mac, "nicModel": model, **extra}


def live(g: Guest) -> dict[str, LiveNic]:
    return {n.mac: n for n in parse_nics(g.domain.XMLDesc(0))}


@pytest.mark.parametrize("model", MODELS)
async def test_each_model_plugs_and_unplugs_with_the_guest_acknowledging(
    agent: AgentClient, clean_guest: Guest, bridge: str, model: str
) -> None:
    mac = new_mac()
    seen_from = clean_guest.console_size()
    result = await agent.ok("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic(bridge, mac, model, id=f"m-{model}"))
    placed = result["nic"]
    assert (placed["alias"], placed["macAddr"], placed["nicModel"]) == (f"ua-m-{model}", mac, model)
    assert placed["address"]["type"] == "pci" and placed["name"].startswith("vnet")
    in_xml = live(clean_guest)[mac]
    assert in_xml.alias == placed["alias"] and in_xml.network == bridge
    assert str(in_xml.address) == "0000:00:{slot:02x}.0".format(slot=int(placed["address"]["slot"], 16))
    if model == "virtio":  # the tiny guest has a driver for virtio only
        assert (await clean_guest.wait_console("NETDEV-ADDED", after=seen_from)).endswith(mac)

    seen_from = clean_guest.console_size()
    assert await agent.ok("VM.hotunplugNic", vmId=clean_guest.uuid, nic={"alias": placed["alias"]}) == {
        "vmId": clean_guest.uuid,
        "nic": {"alias": placed["alias"], "macAddr": mac},
    }
    assert mac not in live(clean_guest)  # gone when the call returns: the guest released it
    if model == "virtio":
        await clean_guest.wait_console("NETDEV-REMOVED", after=seen_from)


async def test_bridgeless_nic_is_a_tap_on_no_bridge(agent: AgentClient, clean_guest: Guest) -> None:
    mac = new_mac()
    params = {"type": "interface", "device": "bridgeless", "macAddr": mac, "nicModel": "pv", "id": "eth1"}
    placed = (await agent.ok("VM.hotplugNic", vmId=clean_guest.uuid, nic=params))["nic"]
    assert placed["device"] == "bridgeless"
    assert live(clean_guest)[mac].interface_type == "ethernet"
    tap = placed["name"]
    assert await asyncio.to_thread(netdev.exists, tap)
    assert not netdev.master(tap)  # on no bridge
    await agent.ok("VM.hotunplugNic", vmId=clean_guest.uuid, nic={"macAddr": mac})
    assert mac not in live(clean_guest)


@pytest.fixture
def veth() -> Iterator[str]:
    """A host interface for macvtap: this kernel has no dummy devices, so a veth pair."""
    netdev.delete("hpt-vl0")
    subprocess.run(["ip", "link", "add", "hpt-vl0", "type", "veth", "peer", "name", "hpt-vl1"], check=True)
    subprocess.run(["ip", "link", "set", "hpt-vl0", "up"], check=True)
    yield "hpt-vl0"
    netdev.delete("hpt-vl0")


async def test_vnlink_nic_is_macvtap_on_the_host_device(agent: AgentClient, clean_guest: Guest, veth: str) -> None:
    mac = new_mac()
    params = {"type": "interface", "device": "vnlink", "network": veth, "macAddr": mac, "nicModel": "e1000"}
    placed = (await agent.ok("VM.hotplugNic", vmId=clean_guest.uuid, nic=params))["nic"]
    found = live(clean_guest)[mac]
    assert (found.interface_type, found.network) == ("direct", veth)
    assert placed["device"] == "vnlink" and placed["network"] == veth
    ip = ["ip", "-d", "link", "show", placed["name"]]
    link = (await asyncio.to_thread(subprocess.run, ip, capture_output=True, text=True)).stdout
    assert "macvtap" in link and f"@{veth}" in link
    await agent.ok("VM.hotunplugNic", vmId=clean_guest.uuid, nic={"alias": placed["alias"]})
    assert mac not in live(clean_guest)


async def test_explicit_pci_address_is_honoured_and_a_taken_slot_is_refused(
    agent: AgentClient, clean_guest: Guest, bridge: str
) -> None:
    address = {"type": "pci", "domain": "0x0000", "bus": "0x00", "slot": "0x1c", "function": "0x0"}
    first, second = new_mac(), new_mac()
    placed = (await agent.ok("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic(bridge, first, address=address)))["nic"]
    assert placed["address"] == address
    assert str(live(clean_guest)[first].address) == "0000:00:1c.0"

    refused = await agent.error("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic(bridge, second, address=address))
    assert refused.code == 49
    assert refused.message.startswith("Failed to hotplug NIC: ")
    assert "0000:00:1c.0" in refused.message and "double use" in refused.message
    assert refused.data == {"libvirtCode": 27}
    assert second not in live(clean_guest) and first in live(clean_guest)


async def test_missing_bridge_is_refused_with_libvirts_reason(agent: AgentClient, clean_guest: Guest) -> None:
    mac = new_mac()
    refused = await agent.error("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic("hpt-nosuch0", mac))
    assert refused.code == 49
    assert "hpt-nosuch0" in refused.message and "No such device" in refused.message
    assert mac not in live(clean_guest)


async def test_boot_order_shows_in_virsh_dumpxml(agent: AgentClient, clean_guest: Guest, bridge: str) -> None:
    mac = new_mac()
    await agent.ok("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic(bridge, mac, bootOrder=2))
    virsh = ["virsh", "-c", "qemu:///system", "dumpxml", clean_guest.uuid]
    dumped = (await asyncio.to_thread(subprocess.run, virsh, capture_output=True, text=True, check=True)).stdout
    iface = etree.fromstring(dumped.encode()).xpath(f"devices/interface[mac/@address='{mac}']")[0]
    assert iface.find("boot").get("order") == "2"


def _kernel_has_qos_support() -> bool:
    """Can this kernel do what libvirt's <bandwidth> needs (sfq qdisc, police action)?"""
    netdev.delete("hpt-qos0")
    subprocess.run(["ip", "link", "add", "hpt-qos0", "type", "veth", "peer", "name", "hpt-qos1"], check=True)
    try:
        checks = [
            ["tc", "qdisc", "add", "dev", "hpt-qos0", "root", "sfq"],
            ["tc", "qdisc", "add", "dev", "hpt-qos0", "ingress"],
            ["tc", "filter", "add", "dev", "hpt-qos0", "parent", "ffff:", "protocol", "all", "u32", "match", "u32",
             "0", "0", "police", "rate", "1mbit", "burst", "10k", "drop"],
        ]  # fmt: skip
        return all(subprocess.run(c, capture_output=True).returncode == 0 for c in checks)
    finally:
        netdev.delete("hpt-qos0")


async def test_qos_is_applied_or_refused_cleanly_by_what_the_kernel_can_do(
    agent: AgentClient, clean_guest: Guest, bridge: str
) -> None:
    mac = new_mac()
    qos = {"inbound": {"average": 1000, "peak": 2000, "burst": 1024}, "outbound": {"average": 500}}
    answer = await agent.call("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic(bridge, mac, specParams=qos))
    if await asyncio.to_thread(_kernel_has_qos_support):
        assert answer.result["nic"]["macAddr"] == mac  # type: ignore[union-attr]
        iface = etree.fromstring(clean_guest.domain.XMLDesc(0)).xpath(f"devices/interface[mac/@address='{mac}']")[0]
        assert iface.find("bandwidth/inbound").get("average") == "1000"
        assert iface.find("bandwidth/outbound").get("average") == "500"
    else:
        assert answer.code == 49  # type: ignore[union-attr]
        assert "qdisc kind is unknown" in answer.message or "TC action" in answer.message  # type: ignore[union-attr]
        assert mac not in live(clean_guest)  # nothing half-applied


async def test_sriov_vf_that_does_not_exist_is_refused(agent: AgentClient, clean_guest: Guest) -> None:
    mac = new_mac()
    params = {
        "type": "interface",
        "device": "sriov",
        "macAddr": mac,
        "nicModel": "pv",
        "specParams": {"vfAddress": "0000:7f:1f.7"},
    }
    refused = await agent.error("VM.hotplugNic", vmId=clean_guest.uuid, nic=params)
    assert refused.code == 49
    # libvirt's reason: on a host with an IOMMU, that no such PCI device exists; on this
    # machine kind, that it cannot pass PCI devices through at all.  Either way it says PCI.
    assert "PCI" in refused.message.removeprefix("Failed to hotplug NIC: ")
    assert isinstance(refused.data["libvirtCode"], int)
    assert mac not in live(clean_guest)


async def test_unplugging_a_nic_the_vm_does_not_have(agent: AgentClient, clean_guest: Guest) -> None:
    refused = await agent.error("VM.hotunplugNic", vmId=clean_guest.uuid, nic={"alias": "ua-never-plugged"})
    assert refused.code == 50
    assert "no such device" in refused.message and "ua-never-plugged" in refused.message


async def test_concurrent_plugs_and_unplugs_on_one_vm_leave_the_live_xml_consistent(
    agent: AgentClient, clean_guest: Guest, bridge: str
) -> None:
    macs = [new_mac() for _ in range(6)]
    plugs = await asyncio.gather(
        *(
            agent.call("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic(bridge, m, id=f"c{i}"))
            for i, m in enumerate(macs)
        )
    )
    assert all(hasattr(p, "result") for p in plugs), plugs
    now = live(clean_guest)
    assert set(macs) <= set(now)
    slots = [str(now[m].address) for m in macs]
    assert len(set(slots)) == len(slots)
    # Unplug half while plugging the same NICs again under new MACs: every call sees a
    # consistent VM, and the end state is exactly what the successful calls say.
    extra = [new_mac() for _ in range(3)]
    mixed = await asyncio.gather(
        *(agent.call("VM.hotunplugNic", vmId=clean_guest.uuid, nic={"alias": f"ua-c{i}"}) for i in range(3)),
        *(agent.call("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic(bridge, m)) for m in extra),
    )
    assert all(hasattr(r, "result") for r in mixed), mixed
    now = live(clean_guest)
    assert set(now) >= set(macs[3:]) | set(extra)
    assert not set(now) & set(macs[:3])
    assert len({str(n.address) for n in now.values()}) == len(now)


async def test_bad_requests_get_precise_errors_and_the_agent_keeps_serving(
    agent: AgentClient, clean_guest: Guest, bridge: str
) -> None:
    parse_error = await agent.post_raw(b"{this is not json")
    assert parse_error["error"]["code"] == -32700
    unknown = await agent.post_raw(b'{"jsonrpc": "2.0", "method": "VM.frobnicate", "id": 7}')
    assert unknown["error"]["code"] == -32601
    vm = clean_guest.uuid
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"nic": nic(bridge, new_mac())}, 11, "vmId"),
        ({"vmId": "not-a-uuid", "nic": nic(bridge, new_mac())}, -32602, "vmId"),
        ({"vmId": "00000000-0000-0000-0000-000000000001", "nic": nic(bridge, new_mac())}, 1, "no VM"),
        ({"vmId": vm}, 11, "nic"),
        ({"vmId": vm, "nic": nic(bridge, "52:54:00:zz:00:01")}, -32602, "macAddr"),
        ({"vmId": vm, "nic": nic(bridge, new_mac(), "ne2k_pci")}, -32602, "nicModel"),
        ({"vmId": vm, "nic": {**nic(bridge, new_mac()), "device": "vlan"}}, -32602, "device"),
        ({"vmId": vm, "nic": nic(bridge, new_mac(), address={"type": "pci", "slot": "0x40"})}, -32602, "slot"),
        ({"vmId": vm, "nic": nic(bridge, new_mac(), address="00:03.0")}, -32602, "address"),
    ]
    for params, code, word in cases:
        refused = await agent.error("VM.hotplugNic", **params)
        assert refused.code == code, (params, refused)
        assert word in refused.message, (params, refused)
        assert "Traceback" not in refused.message
    tried = {c[0]["nic"]["macAddr"] for c in cases if "nic" in c[0]}
    assert not tried & set(live(clean_guest))  # nothing half-applied by any of them
    assert await agent.ok("Host.ping") is True


async def test_the_seeds_bare_verb_names_work_too(agent: AgentClient, clean_guest: Guest, bridge: str) -> None:
    mac = new_mac()
    placed = (await agent.ok("hotplugNic", vmId=clean_guest.uuid, nic=nic(bridge, mac, id="bare")))["nic"]
    assert live(clean_guest)[mac].alias == placed["alias"] == "ua-bare"
    await agent.ok("hotunplugNic", vmId=clean_guest.uuid, nic={"macAddr": mac})
    assert mac not in live(clean_guest)
