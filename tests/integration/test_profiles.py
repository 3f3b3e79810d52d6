"""vNIC profiles and network QoS on real PostgreSQL with the scripted fake host: what a profile
makes the host apply (port mirroring, QoS as specParams), and oVirt's canDo around profiles and QoS
that NICs use."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.services import inventory, nics, profiles, vms
from engine.services.nics import NicFields
from engine.services.profiles import NO_QOS, ProfileFields, QosFields
from shared_schema.nic import Bandwidth
from tests.fakes import Hold
from tests.integration.conftest import USER, Running

RATES = QosFields(name="gold", type="network", inbound_average=10, inbound_peak=20, inbound_burst=5,
                  outbound_average=1, outbound_peak=2, outbound_burst=3)  # fmt: skip


async def dc_of(r: Running) -> str:
    async with r.ctx.transaction() as repo:
        return (await repo.network(r.profile.network_id)).data_center_id


async def audit_codes(r: Running) -> list[int]:
    async with r.ctx.transaction() as repo:
        return [e.log_type for e in await repo.audit_entries()]


async def plugged_nic_on(r: Running, fields: ProfileFields) -> tuple[str, str]:
    """A profile of the running VM's network, and a NIC on it plugged into the running VM."""
    profile = await profiles.add_profile(r.ctx, USER, fields)
    nic = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="n2", profile_id=profile.id))
    assert nic.plugged
    return profile.id, nic.id


async def test_a_plug_sends_the_profiles_mirroring_and_qos_in_libvirts_units(running: Running) -> None:
    r = running
    qos = await profiles.add_qos(r.ctx, USER, await dc_of(r), RATES)
    fields = ProfileFields(name="mirror", network_id=r.profile.network_id, port_mirroring=True, qos_id=qos.id)
    await plugged_nic_on(r, fields)
    (spec,) = [what for verb, _, what in r.agent.calls if verb == "VM.hotplugNic"]
    assert spec.promisc == ("net1",)  # the network's bridge: all of its traffic
    # oVirt's Mbps x 125 = kB/s, MB x 1000 = kB (its NetworkQosMapper)
    assert (spec.inbound, spec.outbound) == (Bandwidth(1250, 2500, 5000), Bandwidth(125, 250, 3000))
    assert spec.to_params()["specParams"] == {
        "inbound": {"average": 1250, "peak": 2500, "burst": 5000},
        "outbound": {"average": 125, "peak": 250, "burst": 3000},
    }
    assert (await audit_codes(r))[:3] == [nics.PLUGGED, nics.ADDED, profiles.PROFILE_ADDED]


async def test_what_a_host_applies_does_not_change_under_plugged_nics_of_running_vms(running: Running) -> None:
    r = running
    qos = await profiles.add_qos(r.ctx, USER, await dc_of(r), RATES)
    profile_id, nic_id = await plugged_nic_on(
        r, ProfileFields(name="mirror", network_id=r.profile.network_id, port_mirroring=True, qos_id=qos.id)
    )
    for change in (ProfileFields(port_mirroring=False), ProfileFields(qos_id=NO_QOS)):
        with pytest.raises(EngineError) as refused:
            await profiles.update_profile(r.ctx, USER, profile_id, change)
        assert refused.value.kind is errors.PROFILE_USED_ON_HOSTS
        assert "used by NICs plugged into running VMs (vm1/n2); deactivate them" in refused.value.detail
    with pytest.raises(EngineError) as refused:
        await profiles.update_qos(r.ctx, USER, qos.data_center_id, qos.id, QosFields(inbound_average=15))
    assert refused.value.kind is errors.PROFILE_USED_ON_HOSTS and "QoS gold is used" in refused.value.detail
    assert (await audit_codes(r))[:3] == [profiles.QOS_UPDATE_FAILED, profiles.PROFILE_UPDATE_FAILED,
                                          profiles.PROFILE_UPDATE_FAILED]  # fmt: skip
    # What the host does not see may change; so may everything once the NIC is unplugged.
    renamed = await profiles.update_profile(r.ctx, USER, profile_id, ProfileFields(name="watch", description="d"))
    assert (renamed.name, renamed.port_mirroring) == ("watch", True)
    await nics.set_plugged(r.ctx, USER, r.vm.id, nic_id, False)
    quiet = await profiles.update_profile(r.ctx, USER, profile_id, ProfileFields(port_mirroring=False, qos_id=NO_QOS))
    assert (quiet.port_mirroring, quiet.qos_id) == (False, None)
    faster = await profiles.update_qos(r.ctx, USER, qos.data_center_id, qos.id, QosFields(inbound_average=15))
    assert faster.inbound is not None and (faster.inbound.average, faster.inbound.peak) == (15, 20)


async def test_a_stopped_vm_does_not_hold_its_profiles(running: Running) -> None:
    r = running
    profile_id, nic_id = await plugged_nic_on(r, ProfileFields(name="mirror", network_id=r.profile.network_id))
    await vms.stop_vm(r.ctx, USER, r.vm.id)
    mirrored = await profiles.update_profile(r.ctx, USER, profile_id, ProfileFields(port_mirroring=True))
    assert mirrored.port_mirroring
    await vms.run_vm(r.ctx, USER, r.vm.id)
    (spec,) = [what for verb, _, what in r.agent.calls if verb == "VM.create"][-1:]
    assert {n.alias: n.promisc for n in spec.nics} == {f"ua-{r.nic1.id}": (), f"ua-{nic_id}": ("net1",)}


async def test_a_profile_or_qos_in_use_is_not_removed(running: Running) -> None:
    r = running
    with pytest.raises(EngineError) as refused:
        await profiles.remove_profile(r.ctx, USER, r.profile.id)
    assert refused.value.kind is errors.IN_USE and "used by NICs (vm1/nic1)" in refused.value.detail
    qos = await profiles.add_qos(r.ctx, USER, await dc_of(r), RATES)
    spare = await profiles.add_profile(r.ctx, USER, ProfileFields(name="spare", network_id=r.profile.network_id,
                                                                  qos_id=qos.id))  # fmt: skip
    with pytest.raises(EngineError) as refused:
        await profiles.remove_qos(r.ctx, USER, qos.data_center_id, qos.id)
    assert refused.value.kind is errors.IN_USE and "used by vNIC profiles spare" in refused.value.detail
    await profiles.remove_profile(r.ctx, USER, spare.id)
    await profiles.remove_qos(r.ctx, USER, qos.data_center_id, qos.id)
    assert (await audit_codes(r))[:2] == [profiles.QOS_REMOVED, profiles.PROFILE_REMOVED]


async def test_a_pass_through_profile_is_kept_but_no_nic_of_it_is_plugged(running: Running) -> None:
    r = running
    sriov = await profiles.add_profile(r.ctx, USER, ProfileFields(name="vf", network_id=r.profile.network_id,
                                                                  pass_through=True))  # fmt: skip
    nic = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="vf1", profile_id=sriov.id), activate=False)
    calls = len(r.agent.calls)
    for plug in (
        nics.set_plugged(r.ctx, USER, r.vm.id, nic.id, True),
        nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="vf2", profile_id=sriov.id)),
        nics.update_nic(r.ctx, USER, r.vm.id, r.nic1.id, NicFields(profile_id=sriov.id), None),
    ):
        with pytest.raises(EngineError) as refused:
            await plug
        assert refused.value.kind in (errors.PASS_THROUGH_UNSUPPORTED, errors.UPDATE_PLUGGED_RUNNING)
    assert len(r.agent.calls) == calls  # nothing reached the host
    with pytest.raises(EngineError) as refused:
        await nics.set_plugged(r.ctx, USER, r.vm.id, nic.id, True)
    assert "virtual function of a host NIC, which this engine does not manage" in refused.value.detail
    # oVirt's rules: pass-through takes no mirroring nor QoS, and is not turned on under NICs.
    with pytest.raises(EngineError) as refused:
        await profiles.update_profile(r.ctx, USER, sriov.id, ProfileFields(port_mirroring=True))
    assert refused.value.kind is errors.INVALID
    plain = await profiles.add_profile(r.ctx, USER, ProfileFields(name="plain", network_id=r.profile.network_id))
    await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="cold", profile_id=plain.id), activate=False)
    with pytest.raises(EngineError) as refused:
        await profiles.update_profile(r.ctx, USER, plain.id, ProfileFields(pass_through=True))
    assert refused.value.kind is errors.IN_USE and "while NICs use it (vm1/cold)" in refused.value.detail


async def test_a_profile_takes_only_a_qos_of_its_networks_data_center(running: Running) -> None:
    r = running
    other = await inventory.add_data_center(r.ctx, "elsewhere")
    foreign = await profiles.add_qos(r.ctx, USER, other.id, RATES)
    with pytest.raises(EngineError) as refused:
        await profiles.add_profile(r.ctx, USER, ProfileFields(name="x", network_id=r.profile.network_id,
                                                              qos_id=foreign.id))  # fmt: skip
    assert refused.value.kind is errors.QOS_NOT_FOUND
    with pytest.raises(EngineError) as refused:
        await profiles.update_profile(r.ctx, USER, r.profile.id, ProfileFields(qos_id=foreign.id))
    assert refused.value.kind is errors.QOS_NOT_FOUND


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (QosFields(name="q", type="storage"), "type must be network"),
        (QosFields(name="q", type="network", inbound_average=10), "give inbound_average, inbound_peak and"),
        (QosFields(name="q", type="network", outbound_average=10, outbound_peak=5, outbound_burst=1),
         "outbound_peak (5 Mbps) must be at least outbound_average (10 Mbps)"),
        (QosFields(name="q", type="network", inbound_average=1025, inbound_peak=2000, inbound_burst=1),
         "inbound_average must be 1-1024"),
        (QosFields(name="", type="network"), "a QoS needs a name"),
    ],
)  # fmt: skip
async def test_a_qos_is_refused_with_ovirts_rules(running: Running, fields: QosFields, words: str) -> None:
    with pytest.raises(EngineError) as refused:
        await profiles.add_qos(running.ctx, USER, await dc_of(running), fields)
    assert refused.value.kind is errors.INVALID and words in refused.value.detail


async def test_a_profile_change_waits_for_a_plug_in_flight_and_then_sees_its_nic(running: Running) -> None:
    """The plug holds the profile (shared) through its host call; the change waits for the plug
    to commit and is then refused for the NIC it plugged, instead of changing what the host was
    just told under it.  Two plugs of one profile hold it together."""
    r = running
    profile = await profiles.add_profile(
        r.ctx, USER, ProfileFields(name="mirror", network_id=r.profile.network_id, port_mirroring=True)
    )
    first = await nics.add_nic(r.ctx, USER, r.vm.id, NicFields(name="n2", profile_id=profile.id), activate=False)
    other = await vms.add_vm(r.ctx, USER, replace(r.vm, id="", name="vm2", status="down", host_id=None))
    await vms.run_vm(r.ctx, USER, other.id)
    second = await nics.add_nic(r.ctx, USER, other.id, NicFields(name="n3", profile_id=profile.id), activate=False)
    hold, hold2 = Hold(), Hold()
    r.agent.script("VM.hotplugNic", hold, hold2)
    plug = asyncio.create_task(nics.set_plugged(r.ctx, USER, r.vm.id, first.id, True))
    await asyncio.wait_for(hold.reached.wait(), 5)
    plug2 = asyncio.create_task(nics.set_plugged(r.ctx, USER, other.id, second.id, True))
    await asyncio.wait_for(hold2.reached.wait(), 5)  # not kept waiting by the first plug
    try:
        change = asyncio.create_task(
            profiles.update_profile(r.ctx, USER, profile.id, ProfileFields(port_mirroring=False))
        )
        await asyncio.sleep(0.3)
        assert not change.done(), "the profile changed while a plug was sending it to the host"
    finally:
        hold.release.set()
        hold2.release.set()
    assert (await plug).plugged and (await plug2).plugged
    with pytest.raises(EngineError) as refused:
        await change
    assert refused.value.kind is errors.PROFILE_USED_ON_HOSTS
    assert "(vm1/n2, vm2/n3)" in refused.value.detail
