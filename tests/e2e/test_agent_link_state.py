"""VM.updateDevice through a real agent: a plugged NIC's link goes down and up again without an
unplug, and the tiny guest's kernel sees its carrier follow (NETDEV-CARRIER on its console); any
other change is refused (56) with the live XML untouched."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.agent_proc import AgentClient
from tests.e2e.conftest import Guest
from vdsm_agent.live_xml import interface_element

MAC = "52:54:00:ac:00:01"
ALIAS = "ua-link"


def link(alias: str = ALIAS, **params: Any) -> dict[str, Any]:
    return {"deviceType": "interface", "alias": alias, **params}


def live_link_state(g: Guest, alias: str = ALIAS) -> str:
    iface = interface_element(g.domain.XMLDesc(0), alias)
    assert iface is not None, f"{alias} is not in the live XML"
    state = iface.find("link")
    return "up" if state is None else str(state.get("state"))


@pytest.fixture
async def plugged(agent: AgentClient, clean_guest: Guest, bridge: str) -> dict[str, Any]:
    """A virtio NIC plugged into the shared guest, its carrier seen up by the guest."""
    seen = clean_guest.console_size()
    nic = {"type": "interface", "device": "bridge", "network": bridge, "macAddr": MAC, "nicModel": "pv", "alias": ALIAS}
    placed: dict[str, Any] = (await agent.ok("VM.hotplugNic", vmId=clean_guest.uuid, nic=nic))["nic"]
    await clean_guest.wait_console(f"NETDEV-CARRIER {MAC} up", after=seen)
    return placed


async def test_link_goes_down_and_up_in_the_guest_without_an_unplug(
    agent: AgentClient, clean_guest: Guest, plugged: dict[str, Any]
) -> None:
    (before,) = await agent.ok("Host.getVMFullList", vmList=[clean_guest.uuid])
    seen = clean_guest.console_size()
    down = await agent.ok("VM.updateDevice", vmId=clean_guest.uuid, params=link(linkActive=False))
    assert down == {"vmId": clean_guest.uuid, "nic": {**plugged, "linkActive": False}}  # same slot, same tap
    assert live_link_state(clean_guest) == "down"
    await clean_guest.wait_console(f"NETDEV-CARRIER {MAC} down", after=seen)
    (after,) = await agent.ok("Host.getVMFullList", vmList=[clean_guest.uuid])
    assert after["hash"] != before["hash"]  # monitoring sees the change

    # Asked again (a retry after a lost answer): the same answer, nothing sent to libvirt.
    assert await agent.ok("VM.updateDevice", vmId=clean_guest.uuid, params=link(linkActive=False)) == down

    seen = clean_guest.console_size()
    up = await agent.ok("VM.updateDevice", vmId=clean_guest.uuid, params=link(linkActive=True))
    assert up == {"vmId": clean_guest.uuid, "nic": plugged}
    assert live_link_state(clean_guest) == "up"
    await clean_guest.wait_console(f"NETDEV-CARRIER {MAC} up", after=seen)
    assert "NETDEV-REMOVED" not in clean_guest.console.read_text(errors="replace")[seen:]


async def test_network_and_mirroring_as_they_are_are_accepted(
    agent: AgentClient, clean_guest: Guest, plugged: dict[str, Any], bridge: str
) -> None:
    """The engine may send the NIC's whole state, as oVirt's does: unchanged parts are no change."""
    params = link(linkActive=False, network=bridge, portMirroring=[], custom={}, specParams={})
    answer = await agent.ok("VM.updateDevice", vmId=clean_guest.uuid, params=params)
    assert answer["nic"]["linkActive"] is False and live_link_state(clean_guest) == "down"


REFUSED: list[tuple[str, dict[str, Any], int, str]] = [
    ("another network", link(linkActive=False, network="hpt-other0"), 56, "only linkActive can change"),
    ("port mirroring", link(portMirroring=["hpt-br0"]), 56, "portMirroring: ua-link mirrors []"),
    ("QoS", link(linkActive=False, specParams={"inbound": {"average": 100}}), 56, "specParams: only linkActive"),
    ("an MTU", link(mtu=9000), 56, "mtu: only linkActive"),
    ("a NIC the VM does not have", link("ua-nosuch", linkActive=False), 56, "no NIC with alias ua-nosuch"),
    ("a disk", {"deviceType": "disk", "alias": ALIAS}, 56, "only NICs"),
    ("a model change", link(nicModel="e1000"), -32602, "unknown keys ['nicModel']"),
    ("a link state that is not a boolean", link(linkActive="down"), -32602, "params.linkActive"),
    ("no alias", {"deviceType": "interface", "linkActive": False}, 11, "params.alias"),
]


@pytest.mark.parametrize(("params", "code", "words"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
async def test_anything_but_the_link_is_refused_and_nothing_changes(
    agent: AgentClient, clean_guest: Guest, plugged: dict[str, Any], params: dict[str, Any], code: int, words: str
) -> None:
    before = clean_guest.domain.XMLDesc(0)
    refused = await agent.error("VM.updateDevice", vmId=clean_guest.uuid, params=params)
    assert refused.code == code and words in refused.message, refused
    if code == 56:
        assert refused.message.startswith("Failed to update device: ")
    assert clean_guest.domain.XMLDesc(0) == before
