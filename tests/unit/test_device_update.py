"""VM.updateDevice: VDSM's params strictly read, and through the agent's JSON-RPC face on the
simulated hypervisor, a NIC's link state changes (and only that), in the live XML and its answer."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from shared_schema import errors, verbs
from shared_schema.answers import UpdateDeviceAnswer
from shared_schema.device_update import NicUpdate
from shared_schema.errors import WireError
from tests.unit.test_agent_monitoring import Agent, nic
from vdsm_agent.live_xml import interface_element, parse_nics

MISSING, INVALID, REFUSED = 11, -32602, 56


def update(**changes: Any) -> dict[str, Any]:
    return {"deviceType": "interface", "alias": "ua-n1", **changes}


def test_the_code_is_vdsms() -> None:
    assert (errors.UPDATE_DEVICE.code, errors.UPDATE_DEVICE.name) == (56, "updateDevice")
    assert errors.TABLE[56] is errors.UPDATE_DEVICE
    assert verbs.UPDATE_DEVICE == "VM.updateDevice"


def test_params_are_read_and_round_trip() -> None:
    parsed = NicUpdate.from_params(update(linkActive=False, network="br0", portMirroring=["br1"], custom={}))
    assert parsed == NicUpdate("ua-n1", False, "br0", ("br1",))
    assert NicUpdate.from_params(parsed.to_params()) == parsed
    assert NicUpdate("ua-n1", True).to_params() == {"deviceType": "interface", "alias": "ua-n1", "linkActive": True}
    assert NicUpdate.from_params(update()) == NicUpdate("ua-n1")  # nothing asked


BAD: list[tuple[str, Any, int, str]] = [
    ("no params", None, MISSING, "params"),
    ("params not a dict", ["ua-n1"], INVALID, "params"),
    ("an unknown key", update(nicModel="e1000"), INVALID, "params: unknown keys ['nicModel']"),
    ("no deviceType", {"alias": "ua-n1"}, MISSING, "params.deviceType"),
    ("deviceType not text", update(deviceType=1), INVALID, "params.deviceType"),
    ("a graphics device", update(deviceType="graphics"), REFUSED, "only NICs"),
    ("no alias", {"deviceType": "interface"}, MISSING, "params.alias"),
    ("an alias not of the agent", update(alias="net0"), INVALID, "params.alias"),
    ("linkActive as text", update(linkActive="false"), INVALID, "params.linkActive"),
    ("a network not a name", update(network="br 0"), INVALID, "params.network"),
    ("portMirroring as text", update(portMirroring="br0"), INVALID, "params.portMirroring"),
    ("a mirrored bridge not a name", update(portMirroring=["ok", "../x"]), INVALID, "params.portMirroring[1]"),
    ("QoS", update(specParams={"inbound": {"average": 1}}), REFUSED, "specParams: only linkActive can change"),
    ("a filter and an MTU", update(filter="clean-traffic", mtu=1400), REFUSED, "filter, mtu: only linkActive"),
    ("VDSM's XML form", update(xml="<interface/>"), REFUSED, "xml: only linkActive"),
]


@pytest.mark.parametrize(("params", "code", "words"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_refused(params: Any, code: int, words: str) -> None:
    with pytest.raises(WireError) as caught:
        NicUpdate.from_params(params)
    assert caught.value.error.code == code
    assert words in caught.value.detail, caught.value.detail


# --- Through the agent, on the simulated hypervisor -----------------------------------------------


def link_state(xml: str, alias: str = "ua-n1") -> str | None:
    iface = interface_element(xml, alias)
    assert iface is not None
    link = iface.find("link")
    return None if link is None else link.get("state")


async def test_link_down_and_up_changes_only_the_link() -> None:
    agent = await Agent().open()
    vm_id = await agent.create("upd", nic(1), nic(2))
    (before,) = (await agent.full(vm_id)).values()
    down = UpdateDeviceAnswer.from_params(
        await agent.ok(verbs.UPDATE_DEVICE, vmId=vm_id, params=update(linkActive=False))
    )
    placed = next(n for n in before.nics if n.alias == "ua-n1")
    assert down == UpdateDeviceAnswer(vm_id, dataclasses.replace(placed, link_active=False))  # same slot, tap
    xml = (await agent.hv.domain(vm_id)).xml
    assert link_state(xml) == "down" and link_state(xml, "ua-n2") is None
    (after,) = (await agent.full(vm_id)).values()
    assert after.device_hash != before.device_hash  # monitoring sees it

    up = await agent.ok(verbs.UPDATE_DEVICE, vmId=vm_id, params=update(linkActive=True))
    assert up["nic"]["linkActive"] is True and link_state((await agent.hv.domain(vm_id)).xml) == "up"
    (again,) = (await agent.full(vm_id)).values()
    assert again.device_hash == before.device_hash  # link up is how it started


async def test_an_unchanged_link_is_answered_without_asking_libvirt() -> None:
    agent = await Agent().open()
    vm_id = await agent.create("upd", nic(1))
    asked: list[str] = []
    real = agent.hv.update_device

    async def counting(vm: str, xml: str) -> None:
        asked.append(xml)
        await real(vm, xml)

    agent.hv.update_device = counting  # type: ignore[method-assign]
    for _ in range(2):
        answer = await agent.ok(verbs.UPDATE_DEVICE, vmId=vm_id, params=update(linkActive=True, network=""))
        assert answer["nic"]["linkActive"] is True
    assert asked == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        (update(linkActive=False, network="br9"), "network: ua-n1 is on 'no network', asked 'br9'"),
        (update(portMirroring=["br9"]), "portMirroring: ua-n1 mirrors [], asked ['br9']"),
        (update(alias="ua-nosuch", linkActive=False), "no such device: the VM has no NIC with alias ua-nosuch"),
    ],
    ids=["another network", "other mirroring", "no such NIC"],
)
async def test_refusals_leave_the_vm_as_it_was(params: dict[str, Any], words: str) -> None:
    agent = await Agent().open()
    vm_id = await agent.create("upd", nic(1))
    xml = (await agent.hv.domain(vm_id)).xml
    answer = await agent.call(verbs.UPDATE_DEVICE, vmId=vm_id, params=params)
    assert answer["error"]["code"] == REFUSED and words in answer["error"]["message"], answer
    assert (await agent.hv.domain(vm_id)).xml == xml


async def test_no_such_vm_is_1_and_a_bad_vm_id_is_invalid() -> None:
    agent = await Agent().open()
    missing = await agent.call(verbs.UPDATE_DEVICE, vmId="0a1b2c3d-0000-4000-8000-00000000000f", params=update())
    assert missing["error"]["code"] == 1
    bad = await agent.call(verbs.UPDATE_DEVICE, vmId="vm-1", params=update())
    assert bad["error"]["code"] == INVALID


async def test_a_libvirt_refusal_is_56_with_its_code() -> None:
    agent = await Agent().open()
    vm_id = await agent.create("upd", nic(1))

    async def refusing(vm: str, xml: str) -> None:
        from vdsm_agent.hypervisor import HypervisorError

        raise HypervisorError(84, "Operation not supported: cannot change link state")

    agent.hv.update_device = refusing  # type: ignore[method-assign]
    answer = await agent.call(verbs.UPDATE_DEVICE, vmId=vm_id, params=update(linkActive=False))
    assert answer["error"] == {
        "code": 56,
        "message": "Failed to update device: Operation not supported: cannot change link state",
        "data": {"libvirtCode": 84},
    }
    assert [n.link_state for n in parse_nics((await agent.hv.domain(vm_id)).xml)] == ["up"]
