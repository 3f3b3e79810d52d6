"""Each canDo rule lets the allowed case through and refuses the others with a stable error that says why.

Every rule is tested on both sides in one place: the case it allows (None) next to the case it
refuses, so that a rule that refused nothing, or everything, fails here."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from engine.domain import errors, rules
from engine.domain.errors import EngineError, ErrorKind
from engine.domain.model import (
    Cluster,
    Disk,
    Host,
    Network,
    NetworkQos,
    Nic,
    ProfileUser,
    QosRate,
    Version,
    Vm,
    VnicProfile,
)
from engine.domain.os_types import OS_TYPES
from engine.domain.rules import Refusal, Site

VM_NAME = "web-01"
CLUSTER_NAME = "prod-east"
NIC_NAME = "nic-eth3"
MAC = "56:6f:1a:00:00:2a"

SEED_HOTPLUG_OSES = (
    "rhel_5",
    "rhel_5x64",
    "rhel_6",
    "rhel_6x64",
    "windows_7",
    "windows_7x64",
    "windows_2008",
    "windows_2008x64",
    "windows_2008r2x64",
)


def make_vm(**changes: Any) -> Vm:
    fields: dict[str, Any] = {
        "id": "vm-1",
        "name": VM_NAME,
        "cluster_id": "cluster-1",
        "os_type": "rhel_6x64",
        "status": "up",
        "memory_bytes": 1024**3,
        "host_id": "host-1",
    }
    fields.update(changes)
    return Vm(**fields)


def make_nic(**changes: Any) -> Nic:
    fields: dict[str, Any] = {
        "id": "nic-1",
        "vm_id": "vm-1",
        "name": NIC_NAME,
        "mac": MAC,
        "model": "virtio",
        "profile_id": "profile-1",
        "linked": True,
        "plugged": True,
        "network_name": "storage-net",
        "bridge": "br-storage",
    }
    fields.update(changes)
    return Nic(**fields)


def make_cluster(major: int = 4, minor: int = 7, cluster_id: str = "cluster-1") -> Cluster:
    return Cluster(id=cluster_id, name=CLUSTER_NAME, version=Version(major, minor), data_center_id="dc-1")


def make_host(cluster_id: str = "cluster-1") -> Host:
    return Host(id="host-1", name="hyp-7", cluster_id=cluster_id, address="192.0.2.7", port=54321, status="up")


def make_network(cluster_id: str = "cluster-1", data_center_id: str = "dc-1") -> Network:
    return Network(id="net-1", name="storage-net", data_center_id=data_center_id, bridge="br-storage",
                   cluster_ids=frozenset({cluster_id}))  # fmt: skip


def make_site(cluster: Cluster | None = None, host: Host | str | None = "default", plugged_count: int = 1) -> Site:
    return Site(cluster or make_cluster(), make_host() if host == "default" else host, plugged_count)  # type: ignore[arg-type]


def refused(refusal: Refusal, kind: ErrorKind) -> EngineError:
    assert refusal is not None, f"expected a refusal {kind.name}, got none"
    assert refusal.kind is kind, f"expected {kind.name}, got {refusal.kind.name}: {refusal.detail}"
    assert refusal.detail, "a refusal must say why"
    return refusal


# --- plug ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["up", "powering_up", "down", "powering_down"])
def test_a_nic_may_be_plugged_while_the_vm_is_up_or_down(status: str) -> None:
    assert rules.refuse_plug(make_vm(status=status), make_nic(plugged=False), make_site()) is None


@pytest.mark.parametrize("status", ["paused", "migrating", "not_responding", "suspended"])
def test_plugging_is_refused_in_any_other_vm_status(status: str) -> None:
    err = refused(
        rules.refuse_plug(make_vm(status=status), make_nic(plugged=False), make_site()), errors.VM_STATUS_ILLEGAL
    )
    assert VM_NAME in err.detail and status.replace("_", " ") in err.detail


@pytest.mark.parametrize(("major", "minor", "allowed"), [(3, 0, False), (3, 1, True), (4, 7, True)])
def test_hot_plug_into_a_running_vm_needs_cluster_version_3_1(major: int, minor: int, allowed: bool) -> None:
    refusal = rules.refuse_plug(make_vm(), make_nic(plugged=False), make_site(make_cluster(major, minor)))
    if allowed:
        assert refusal is None
    else:
        err = refused(refusal, errors.HOTPLUG_CLUSTER_VERSION)
        assert CLUSTER_NAME in err.detail and "3.0" in err.detail and "Stop the VM" in err.detail


def test_an_old_cluster_does_not_matter_while_the_vm_is_down() -> None:
    assert rules.refuse_plug(make_vm(status="down"), make_nic(plugged=False), make_site(make_cluster(3, 0))) is None


@pytest.mark.parametrize("os_type", [*SEED_HOTPLUG_OSES, "other", "windows_xp", "rhel_4", "beos_5"])
def test_hot_plug_is_limited_to_the_seeds_operating_systems(os_type: str) -> None:
    refusal = rules.refuse_plug(make_vm(os_type=os_type), make_nic(plugged=False), make_site())
    if os_type in SEED_HOTPLUG_OSES:
        assert refusal is None
    else:
        err = refused(refusal, errors.HOTPLUG_OS)
        assert os_type in err.detail and "rhel_6x64" in err.detail  # says what is supported


def test_the_os_table_offers_hot_plug_exactly_for_the_seeds_list() -> None:
    assert {name for name, os in OS_TYPES.items() if os.nic_hotplug} == set(SEED_HOTPLUG_OSES)


@pytest.mark.parametrize(("plugged", "allowed"), [(0, True), (rules.PCI_DEVICE_BUDGET - 1, True),
                                                  (rules.PCI_DEVICE_BUDGET, False)])  # fmt: skip
def test_the_pci_device_budget_bounds_plugging(plugged: int, allowed: bool) -> None:
    for status in ("up", "down"):
        refusal = rules.refuse_plug(make_vm(status=status), make_nic(plugged=False), make_site(plugged_count=plugged))
        if allowed:
            assert refusal is None
        else:
            assert str(rules.PCI_DEVICE_BUDGET) in refused(refusal, errors.PCI_BUDGET).detail


@pytest.mark.parametrize("status", ["up", "down"])
def test_a_q35_vm_has_no_pci_slot_budget_its_host_counts_its_free_root_ports(status: str) -> None:
    q35 = make_vm(status=status, bios_type="q35_sea_bios")
    assert rules.refuse_plug(q35, make_nic(plugged=False), make_site(plugged_count=rules.PCI_DEVICE_BUDGET)) is None
    custom = make_vm(status=status, bios_type="q35_sea_bios", custom_emulated_machine="pc-q35-7.2")
    assert rules.refuse_plug(custom, make_nic(plugged=False), make_site(plugged_count=60)) is None
    i440fx = make_vm(status=status, custom_emulated_machine="pc-i440fx-7.2")
    refused(rules.refuse_plug(i440fx, make_nic(plugged=False), make_site(plugged_count=26)), errors.PCI_BUDGET)


MACHINES: list[tuple[str, str, str | None]] = [
    ("i440fx_sea_bios", "", None),
    ("q35_sea_bios", "", None),
    ("q35_sea_bios", "pc-q35-7.2", None),
    ("i440fx_sea_bios", "pc-i440fx-7.2", None),
    ("q35_ovmf", "", "needs UEFI firmware (OVMF), which the hosts of this engine do not have; use q35_sea_bios"),
    ("q35_secure_boot", "", "bios.type q35_secure_boot needs UEFI firmware"),
    ("bochs", "", "bios.type must be one of cluster_default, i440fx_sea_bios"),
    ("i440fx_sea_bios", "pc-q35-7.2", "custom_emulated_machine pc-q35-7.2 is a q35 machine, but bios.type is i440fx"),
    ("q35_sea_bios", "pc", "custom_emulated_machine pc is an i440fx machine, but bios.type is q35_sea_bios"),
    ("i440fx_sea_bios", "virt-8.0", "custom_emulated_machine must be 'pc' (i440fx), 'q35'"),
    ("i440fx_sea_bios", "pc -kernel /etc/shadow", "custom_emulated_machine must be"),
]


@pytest.mark.parametrize(("bios", "machine", "why"), MACHINES)
def test_a_vm_is_seabios_on_i440fx_or_q35_with_a_machine_of_its_chipset(
    bios: str, machine: str, why: str | None
) -> None:
    refusal = rules.refuse_new_vm(make_vm(bios_type=bios, custom_emulated_machine=machine))
    if why is None:
        assert refusal is None
    else:
        assert why in refused(refusal, errors.INVALID).detail


def test_a_nic_without_a_network_is_not_hot_plugged() -> None:
    assert rules.refuse_plug(make_vm(status="down"), make_nic(plugged=False, bridge=""), make_site()) is None
    err = refused(rules.refuse_plug(make_vm(), make_nic(plugged=False, bridge=""), make_site()), errors.INVALID)
    assert NIC_NAME in err.detail and "vNIC profile" in err.detail


def test_a_running_vm_needs_a_host_in_the_networks_cluster() -> None:
    site = make_site(host=make_host(cluster_id="cluster-2"))
    err = refused(rules.refuse_plug(make_vm(), make_nic(plugged=False), site), errors.NETWORK_NOT_IN_CLUSTER)
    assert "hyp-7" in err.detail and CLUSTER_NAME in err.detail
    refused(rules.refuse_plug(make_vm(), make_nic(plugged=False), make_site(host=None)), errors.HOST_NOT_FOUND)


# --- unplug --------------------------------------------------------------------------------


def test_unplug_follows_the_status_version_and_os_rules_but_not_the_budget() -> None:
    nic = make_nic(plugged=True)
    assert rules.refuse_unplug(make_vm(), nic, make_site(plugged_count=rules.PCI_DEVICE_BUDGET)) is None
    refused(rules.refuse_unplug(make_vm(status="paused"), nic, make_site()), errors.VM_STATUS_ILLEGAL)
    refused(rules.refuse_unplug(make_vm(), nic, make_site(make_cluster(3, 0))), errors.HOTPLUG_CLUSTER_VERSION)
    refused(rules.refuse_unplug(make_vm(os_type="other"), nic, make_site()), errors.HOTPLUG_OS)
    assert rules.refuse_unplug(make_vm(status="down", os_type="other"), nic, make_site(make_cluster(3, 0))) is None


# --- NIC fields, network, update, remove ---------------------------------------------------


def test_nic_names_are_unique_within_a_vm() -> None:
    nics = [make_nic(id="a", name="nic1"), make_nic(id="b", name="nic2")]
    vm = make_vm()
    assert rules.refuse_nic_fields(vm, nics, "", "nic3", "virtio") is None
    assert rules.refuse_nic_fields(vm, nics, "b", "nic2", "virtio") is None  # keeping its own name
    assert "nic2" in refused(rules.refuse_nic_fields(vm, nics, "", "nic2", "virtio"), errors.NIC_NAME_IN_USE).detail
    refused(rules.refuse_nic_fields(vm, nics, "a", "nic2", "virtio"), errors.NIC_NAME_IN_USE)
    refused(rules.refuse_nic_fields(vm, nics, "", "", "virtio"), errors.INVALID)


@pytest.mark.parametrize("model", ["virtio", "e1000", "e1000e", "rtl8139"])
def test_models_are_those_the_os_allows(model: str) -> None:
    assert rules.refuse_nic_fields(make_vm(), [], "", "n", model) is None
    err = refused(rules.refuse_nic_fields(make_vm(), [], "", "n", "ne2k_pci"), errors.INVALID_MODEL)
    assert "ne2k_pci" in err.detail and model in err.detail


def test_a_nic_joins_only_a_network_of_the_vms_cluster() -> None:
    assert rules.refuse_network(make_vm(), make_network()) is None
    err = refused(rules.refuse_network(make_vm(), make_network(cluster_id="cluster-2")), errors.NETWORK_NOT_IN_CLUSTER)
    assert "storage-net" in err.detail and VM_NAME in err.detail


def test_a_network_is_attached_only_to_clusters_of_its_data_center() -> None:
    assert rules.refuse_attach(make_cluster(), make_network()) is None
    err = refused(
        rules.refuse_attach(make_cluster(), make_network(data_center_id="dc-2")), errors.NETWORK_NOT_IN_CLUSTER
    )
    assert "storage-net" in err.detail and CLUSTER_NAME in err.detail


@pytest.mark.parametrize("status", ["up", "paused", "migrating", "powering_down", "not_responding"])
def test_a_plugged_nic_of_a_vm_that_is_not_down_can_be_neither_edited_nor_removed(status: str) -> None:
    vm, nic, site = make_vm(status=status), make_nic(plugged=True), make_site()
    for refusal, kind in (
        (rules.refuse_update(vm, nic, site), errors.UPDATE_PLUGGED_RUNNING),
        (rules.refuse_remove(vm, nic), errors.REMOVE_PLUGGED_RUNNING),
    ):
        err = refused(refusal, kind)
        assert NIC_NAME in err.detail and "deactivate it (or stop the VM)" in err.detail
    for unplugged in (
        rules.refuse_update(vm, make_nic(plugged=False), site),
        rules.refuse_remove(vm, make_nic(plugged=False)),
    ):
        assert unplugged is None
    down = make_vm(status="down")
    assert rules.refuse_update(down, nic, site) is None and rules.refuse_remove(down, nic) is None


@pytest.mark.parametrize("status", ["up", "powering_up"])
def test_only_the_link_of_a_plugged_nic_of_a_running_vm_may_change(status: str) -> None:
    vm, nic, site = make_vm(status=status), make_nic(plugged=True), make_site()
    assert rules.refuse_update(vm, nic, site, frozenset({"linked"})) is None
    err = refused(rules.refuse_update(vm, nic, site, frozenset({"linked", "name"})), errors.UPDATE_PLUGGED_RUNNING)
    assert "only its link state (linked) can change" in err.detail and err.detail.endswith("before editing its name")
    everything = refused(rules.refuse_update(vm, nic, site), errors.UPDATE_PLUGGED_RUNNING)
    assert everything.detail.endswith("before editing anything else")


@pytest.mark.parametrize("status", ["paused", "powering_down", "migrating"])
def test_the_link_changes_in_place_only_on_a_running_vm(status: str) -> None:
    err = refused(rules.refuse_update(make_vm(status=status), make_nic(), make_site(), frozenset({"linked"})),
                  errors.UPDATE_PLUGGED_RUNNING)  # fmt: skip
    assert err.detail.endswith("deactivate it (or stop the VM) before editing it")


@pytest.mark.parametrize(
    ("site", "kind"),
    [(make_site(make_cluster(3, 0)), errors.HOTPLUG_CLUSTER_VERSION), (make_site(host=None), errors.HOST_NOT_FOUND)],
    ids=["old cluster", "no host"],
)
def test_a_live_link_change_follows_the_hot_plug_rules(site: Site, kind: ErrorKind) -> None:
    refused(rules.refuse_update(make_vm(), make_nic(), site, frozenset({"linked"})), kind)
    refused(rules.refuse_update(make_vm(os_type="other"), make_nic(), make_site(), frozenset({"linked"})),
            errors.HOTPLUG_OS)  # fmt: skip


# --- VMs -----------------------------------------------------------------------------------


def test_a_new_vm_needs_a_known_os_a_name_libvirt_takes_and_16_mib() -> None:
    assert rules.refuse_new_vm(make_vm(memory_bytes=16 * 2**20)) is None
    assert "beos_5" in refused(rules.refuse_new_vm(make_vm(os_type="beos_5")), errors.INVALID_OS).detail
    refused(rules.refuse_new_vm(make_vm(name="a/b")), errors.INVALID)
    assert "16 MiB" in refused(rules.refuse_new_vm(make_vm(memory_bytes=16 * 2**20 - 1)), errors.INVALID).detail


@pytest.mark.parametrize(("status", "disabled"), [("down", {"stop"}), ("up", {"start", "remove"}),
                                                  ("paused", {"start", "remove"})])  # fmt: skip
def test_vm_actions_follow_its_status(status: str, disabled: set[str]) -> None:
    vm = make_vm(status=status)
    assert set(rules.vm_action_refusals(vm)) == disabled
    assert (rules.refuse_start(vm) is None) == (status == "down")
    assert (rules.refuse_remove_vm(vm) is None) == (status == "down")


# --- what the admin page enables: the same rules, asked ahead of time ----------------------


def test_a_plugged_nic_of_a_running_vm_can_only_be_deactivated_or_have_its_link_changed() -> None:
    refusals = rules.nic_action_refusals(make_vm(status="up"), make_nic(plugged=True), make_site())
    assert set(refusals) == {"activate", "edit", "remove"}  # edit_link is allowed
    assert "already plugged" in refusals["activate"]
    assert "only its link state (linked) can change" in refusals["edit"]


def test_edit_link_is_disabled_for_exactly_the_reason_the_engine_refuses_it() -> None:
    vm, nic, site = make_vm(status="powering_down"), make_nic(plugged=True), make_site()
    refusal = refused(rules.refuse_update(vm, nic, site, frozenset({"linked"})), errors.UPDATE_PLUGGED_RUNNING)
    assert rules.nic_action_refusals(vm, nic, site)["edit_link"] == refusal.detail


def test_an_unplugged_nic_of_a_running_vm_can_be_activated_edited_and_removed() -> None:
    assert set(rules.nic_action_refusals(make_vm(), make_nic(plugged=False), make_site())) == {"deactivate"}


@pytest.mark.parametrize(
    "site",
    [make_site(make_cluster(3, 0)), make_site(plugged_count=rules.PCI_DEVICE_BUDGET),
     make_site(host=make_host(cluster_id="cluster-2"))],
    ids=["old cluster", "pci budget", "host elsewhere"],
)  # fmt: skip
def test_activate_is_disabled_for_exactly_the_reason_the_engine_refuses_it(site: Site) -> None:
    vm, nic = make_vm(), make_nic(plugged=False)
    refusal = rules.refuse_plug(vm, nic, site)
    assert refusal is not None
    assert rules.nic_action_refusals(vm, nic, site)["activate"] == refusal.detail


def test_a_down_vm_allows_every_change_of_a_plugged_nic() -> None:
    refusals = rules.nic_action_refusals(make_vm(status="down"), make_nic(plugged=True), make_site(make_cluster(3, 0)))
    assert set(refusals) == {"activate"}  # only: it is plugged already


# --- the error table -----------------------------------------------------------------------


def test_a_code_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="1001"):
        errors.kind(errors.VM_NOT_FOUND.code, "SOMETHING_ELSE", 400, "Invalid request")


def test_every_kind_has_a_unique_name_and_a_known_status() -> None:
    kinds = [v for v in vars(errors).values() if isinstance(v, ErrorKind)]
    assert len({k.name for k in kinds}) == len(kinds)
    assert {k.status for k in kinds} <= {400, 401, 403, 404, 409, 502, 503}


@pytest.mark.parametrize("image", ["/boot/vmlinuz", "../vmlinuz", "..", "a/b"])
def test_a_new_vm_names_images_never_paths(image: str) -> None:
    assert rules.refuse_new_vm(make_vm(kernel="vmlinuz", initrd="initrd.img")) is None
    assert "not a path" in refused(rules.refuse_new_vm(make_vm(kernel=image)), errors.INVALID).detail
    assert "os.initrd" in refused(rules.refuse_new_vm(make_vm(initrd=image)), errors.INVALID).detail


# --- vNIC profiles, network QoS, disks ----------------------------------------------------


def _users(*plugged_running: bool) -> list[ProfileUser]:
    return [ProfileUser(VM_NAME, "up" if on else "down", f"nic{i}", True) for i, on in enumerate(plugged_running)]


def test_a_profile_changes_what_hosts_apply_only_without_plugged_nics_of_running_vms() -> None:
    old = VnicProfile("p1", "watch", "net-1", port_mirroring=True)
    quiet = replace(old, port_mirroring=False)
    err = refused(rules.refuse_profile_change(old, quiet, _users(True, False)), errors.PROFILE_USED_ON_HOSTS)
    assert f"({VM_NAME}/nic0)" in err.detail and "port mirroring" in err.detail and "nic1" not in err.detail
    assert rules.refuse_profile_change(old, quiet, _users(False)) is None  # a stopped VM takes it at its start
    assert rules.refuse_profile_change(old, replace(old, name="w2", description="d"), _users(True)) is None
    refused(rules.refuse_profile_change(old, replace(old, network_id="net-2"), []), errors.INVALID)
    refused(rules.refuse_profile_change(quiet, replace(quiet, pass_through=True), _users(False)), errors.IN_USE)
    refused(rules.refuse_profile(replace(old, pass_through=True)), errors.INVALID)  # no mirroring with SR-IOV
    refused(rules.refuse_remove_profile(old, _users(False)), errors.IN_USE)
    assert rules.refuse_remove_profile(old, []) is None


@pytest.mark.parametrize(
    ("inbound", "allowed"),
    [(QosRate(10, 20, 5), True), (QosRate(10, 10, 1), True), (QosRate(10, 9, 5), False), (QosRate(0, 1, 1), False),
     (QosRate(1024, 2048, 10240), True), (QosRate(1025, 2048, 1), False), (QosRate(1, 2049, 1), False),
     (QosRate(1, 1, 10241), False)],
)  # fmt: skip
def test_a_network_qos_follows_ovirts_ranges_and_peak_at_least_average(inbound: QosRate, allowed: bool) -> None:
    refusal = rules.refuse_qos(NetworkQos("q1", "gold", "dc-1", inbound=inbound))
    assert (refusal is None) == allowed, refusal


def test_a_plugged_nic_of_a_pass_through_profile_is_refused_before_any_host() -> None:
    for status in ("up", "down"):
        err = refused(rules.refuse_plug(make_vm(status=status), make_nic(plugged=False, pass_through=True),
                                        make_site()), errors.PASS_THROUGH_UNSUPPORTED)  # fmt: skip
        assert "does not manage" in err.detail


def test_a_disk_is_attached_to_a_vm_that_is_down_by_image_name_once_and_one_bootable() -> None:
    down, disk = make_vm(status="down"), Disk("d1", "vm-1", "tiny.qcow2", "cow", bootable=True)
    assert rules.refuse_attach_disk(down, [], disk) is None
    refused(rules.refuse_attach_disk(make_vm(status="up"), [], disk), errors.VM_STATUS_ILLEGAL)
    for bad in (replace(disk, name="../x"), replace(disk, name=""), replace(disk, format="vmdk"),
                replace(disk, interface="ide")):  # fmt: skip
        refused(rules.refuse_attach_disk(down, [], bad), errors.INVALID)
    refused(rules.refuse_attach_disk(down, [disk], replace(disk, id="d2", bootable=False)), errors.NAME_IN_USE)
    refused(rules.refuse_attach_disk(down, [disk], replace(disk, id="d2", name="b.img")), errors.CONFLICT)
    eight = [Disk(f"d{i}", "vm-1", f"{i}.img") for i in range(8)]
    refused(rules.refuse_attach_disk(down, eight, replace(disk, bootable=False)), errors.CONFLICT)
