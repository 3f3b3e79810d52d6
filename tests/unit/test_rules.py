"""Each canDo rule lets the allowed case through and refuses the others with a stable error that says why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.domain import errors, rules
from engine.domain.errors import EngineError, ErrorKind
from engine.domain.model import Cluster, Host, Network, Nic, Version, Vm
from engine.domain.os_types import OS_TYPES

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
    }
    fields.update(changes)
    return Nic(**fields)


def make_cluster(major: int = 4, minor: int = 7, cluster_id: str = "cluster-1") -> Cluster:
    return Cluster(id=cluster_id, name=CLUSTER_NAME, version=Version(major, minor))


def make_host(cluster_id: str = "cluster-1") -> Host:
    return Host(id="host-1", name="hyp-7", cluster_id=cluster_id, address="192.0.2.7", port=54321, status="up")


def make_network(cluster_id: str = "cluster-1") -> Network:
    return Network(id="net-1", name="storage-net", cluster_id=cluster_id, bridge="br-storage")


def refused(call: Callable[[], object], kind: ErrorKind) -> EngineError:
    with pytest.raises(EngineError) as caught:
        call()
    err = caught.value
    assert err.kind is kind, f"expected {kind.name}, got {err.kind.name}: {err.detail}"
    assert err.detail, "a refusal must say why"
    return err


# --- VM status -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["up", "down", "powering_up", "powering_down"])
def test_plug_is_allowed_while_the_vm_is_up_or_down(status: str) -> None:
    rules.vm_status_allows_plug(make_vm(status=status))


@pytest.mark.parametrize("status", ["paused", "migrating", "not_responding"])
def test_plug_is_refused_in_other_vm_statuses(status: str) -> None:
    err = refused(lambda: rules.vm_status_allows_plug(make_vm(status=status)), errors.VM_STATUS_ILLEGAL)
    assert err.kind.status == 409
    assert VM_NAME in err.detail
    assert status.replace("_", " ") in err.detail


# --- hot plug: cluster version and guest OS ---------------------------------------------------


@pytest.mark.parametrize(("major", "minor"), [(3, 1), (3, 2), (4, 7)])
def test_hotplug_is_allowed_from_cluster_version_3_1(major: int, minor: int) -> None:
    rules.hotplug_supported(make_vm(), make_cluster(major, minor))


@pytest.mark.parametrize(("major", "minor"), [(3, 0), (2, 9)])
def test_hotplug_is_refused_below_cluster_version_3_1(major: int, minor: int) -> None:
    err = refused(
        lambda: rules.hotplug_supported(make_vm(), make_cluster(major, minor)), errors.HOTPLUG_CLUSTER_VERSION
    )
    assert err.kind.status == 409
    assert CLUSTER_NAME in err.detail
    assert f"{major}.{minor}" in err.detail  # the cluster's version
    assert "3.1" in err.detail  # the version it needs


@pytest.mark.parametrize("os_type", SEED_HOTPLUG_OSES)
def test_hotplug_is_allowed_for_the_seed_oses(os_type: str) -> None:
    rules.hotplug_supported(make_vm(os_type=os_type), make_cluster())


@pytest.mark.parametrize("os_type", ["other_linux", "windows_xp", "rhel_4", "other", "beos_5"])
def test_hotplug_is_refused_for_other_oses(os_type: str) -> None:
    err = refused(lambda: rules.hotplug_supported(make_vm(os_type=os_type), make_cluster()), errors.HOTPLUG_OS)
    assert err.kind.status == 409
    assert os_type in err.detail
    assert VM_NAME in err.detail
    for supported in SEED_HOTPLUG_OSES:
        assert supported in err.detail  # tells the operator what would work


def test_the_hotplug_os_list_is_exactly_the_seeds() -> None:
    assert {name for name, os in OS_TYPES.items() if os.nic_hotplug} == set(SEED_HOTPLUG_OSES)


def test_os_table_is_keyed_by_the_ovirt_name() -> None:
    assert all(name == os.name for name, os in OS_TYPES.items())


# --- OS type, NIC model -------------------------------------------------------------------------


@pytest.mark.parametrize("os_type", ["other", "rhel_6x64", "windows_xp"])
def test_known_os_types_are_accepted(os_type: str) -> None:
    rules.os_type_known(os_type)


def test_an_unknown_os_type_is_invalid() -> None:
    err = refused(lambda: rules.os_type_known("beos_5"), errors.INVALID_OS)
    assert err.kind.status == 400
    assert "beos_5" in err.detail
    assert "rhel_6x64" in err.detail  # lists the known ones


@pytest.mark.parametrize("model", ["virtio", "e1000", "e1000e", "rtl8139"])
def test_the_usual_nic_models_are_allowed(model: str) -> None:
    rules.model_allowed(make_vm(), model)


def test_an_unknown_nic_model_is_invalid() -> None:
    err = refused(lambda: rules.model_allowed(make_vm(), "ne2k_pci"), errors.INVALID_MODEL)
    assert err.kind.status == 400
    assert "ne2k_pci" in err.detail
    assert "rhel_6x64" in err.detail
    assert "virtio" in err.detail  # what to use instead


def test_no_nic_model_is_allowed_for_an_unknown_os() -> None:
    err = refused(lambda: rules.model_allowed(make_vm(os_type="beos_5"), "virtio"), errors.INVALID_MODEL)
    assert "beos_5" in err.detail


# --- networks -------------------------------------------------------------------------------


def test_a_network_of_the_vms_cluster_is_allowed() -> None:
    rules.network_in_cluster(make_vm(), make_network())


def test_a_network_of_another_cluster_is_refused() -> None:
    err = refused(
        lambda: rules.network_in_cluster(make_vm(), make_network(cluster_id="cluster-2")), errors.NETWORK_NOT_IN_CLUSTER
    )
    assert err.kind.status == 400
    assert "storage-net" in err.detail
    assert VM_NAME in err.detail


def test_a_host_of_the_cluster_carries_its_networks() -> None:
    rules.network_on_host("storage-net", make_cluster(), make_host())


def test_a_host_of_another_cluster_does_not_carry_the_network() -> None:
    err = refused(
        lambda: rules.network_on_host("storage-net", make_cluster(), make_host(cluster_id="cluster-2")),
        errors.NETWORK_NOT_IN_CLUSTER,
    )
    assert "hyp-7" in err.detail
    assert CLUSTER_NAME in err.detail
    assert "storage-net" in err.detail


# --- NIC names and MACs -------------------------------------------------------------------------


def test_a_free_name_is_allowed() -> None:
    rules.name_free([make_nic(id="a", name="nic1"), make_nic(id="b", name="nic2")], "nic3")


def test_a_name_in_use_is_refused() -> None:
    nics = [make_nic(id="a", name="nic1"), make_nic(id="b", name="nic2")]
    err = refused(lambda: rules.name_free(nics, "nic2"), errors.NIC_NAME_IN_USE)
    assert err.kind.status == 409
    assert "nic2" in err.detail


def test_a_nic_may_keep_its_own_name() -> None:
    nics = [make_nic(id="a", name="nic1"), make_nic(id="b", name="nic2")]
    rules.name_free(nics, "nic2", exclude="b")


def test_excluding_another_nic_does_not_free_the_name() -> None:
    nics = [make_nic(id="a", name="nic1"), make_nic(id="b", name="nic2")]
    refused(lambda: rules.name_free(nics, "nic2", exclude="a"), errors.NIC_NAME_IN_USE)


@pytest.mark.parametrize("plugged_with_mac", [[], [make_nic()]], ids=["nobody", "only itself"])
def test_a_mac_no_other_plugged_nic_carries_may_be_plugged(plugged_with_mac: list[Nic]) -> None:
    rules.mac_free_for_plug(make_nic(), plugged_with_mac)


@pytest.mark.parametrize("itself_first", [True, False])
def test_a_mac_another_plugged_nic_carries_is_refused(itself_first: bool) -> None:
    other = make_nic(id="nic-2", vm_id="vm-2", name="db-eth0")
    plugged = [make_nic(), other] if itself_first else [other, make_nic()]
    err = refused(lambda: rules.mac_free_for_plug(make_nic(), plugged), errors.MAC_IN_USE)
    assert err.kind.status == 409
    assert MAC in err.detail
    assert "db-eth0" in err.detail  # names the other NIC, not itself
    assert NIC_NAME not in err.detail


# --- PCI budget -------------------------------------------------------------------------------


@pytest.mark.parametrize("plugged", [0, 1, rules.PCI_DEVICE_BUDGET - 1])
def test_a_device_may_be_plugged_below_the_budget(plugged: int) -> None:
    rules.pci_budget(plugged)


@pytest.mark.parametrize("plugged", [rules.PCI_DEVICE_BUDGET, rules.PCI_DEVICE_BUDGET + 5])
def test_a_device_beyond_the_budget_is_refused(plugged: int) -> None:
    err = refused(lambda: rules.pci_budget(plugged), errors.PCI_BUDGET)
    assert err.kind.status == 409
    assert str(plugged) in err.detail
    assert str(rules.PCI_DEVICE_BUDGET) in err.detail


# --- update and remove --------------------------------------------------------------------------

EDIT_CASES = [
    ("up", False, False),
    ("powering_up", False, False),
    ("down", True, False),
    ("down", False, False),
    ("up", True, True),
    ("powering_up", True, True),
]


@pytest.mark.parametrize(("status", "plugged", "is_refused"), EDIT_CASES)
def test_update_is_refused_only_for_a_plugged_nic_of_a_running_vm(status: str, plugged: bool, is_refused: bool) -> None:
    vm, nic = make_vm(status=status), make_nic(plugged=plugged)
    if not is_refused:
        rules.update_allowed(vm, nic)
        return
    err = refused(lambda: rules.update_allowed(vm, nic), errors.UPDATE_PLUGGED_RUNNING)
    assert err.kind.status == 409
    assert NIC_NAME in err.detail
    assert VM_NAME in err.detail


@pytest.mark.parametrize(("status", "plugged", "is_refused"), EDIT_CASES)
def test_remove_is_refused_only_for_a_plugged_nic_of_a_running_vm(status: str, plugged: bool, is_refused: bool) -> None:
    vm, nic = make_vm(status=status), make_nic(plugged=plugged)
    if not is_refused:
        rules.remove_allowed(vm, nic)
        return
    err = refused(lambda: rules.remove_allowed(vm, nic), errors.REMOVE_PLUGGED_RUNNING)
    assert err.kind.status == 409
    assert NIC_NAME in err.detail
    assert VM_NAME in err.detail


# --- the error table ----------------------------------------------------------------------------


def test_a_code_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="1001"):
        errors.kind(errors.VM_NOT_FOUND.code, "SOMETHING_ELSE", 400, "Invalid request")
    assert [k for k in errors.all_kinds() if k.code == 1001] == [errors.VM_NOT_FOUND]


def test_every_kind_has_a_unique_name_and_a_known_status() -> None:
    kinds = errors.all_kinds()  # codes are unique by construction: kind() refuses a duplicate
    assert len(kinds) > 1
    assert len({k.name for k in kinds}) == len(kinds)
    assert {k.status for k in kinds} <= {400, 401, 403, 404, 409, 502, 503}
    assert [k.code for k in kinds] == sorted(k.code for k in kinds)


def test_every_kind_of_the_module_is_in_the_table() -> None:
    declared = {v for v in vars(errors).values() if isinstance(v, ErrorKind)}
    assert declared == set(errors.all_kinds())


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (errors.VM_NOT_FOUND, 404),
        (errors.INVALID, 400),
        (errors.VM_STATUS_ILLEGAL, 409),
        (errors.HOTPLUG_CLUSTER_VERSION, 409),
        (errors.HOTPLUG_OS, 409),
        (errors.ACTIVATE_NIC_FAILED, 502),
        (errors.HOST_NOT_RESPONDING, 503),
        (errors.UNAUTHORIZED, 401),
        (errors.FORBIDDEN, 403),
    ],
    ids=lambda v: v.name if isinstance(v, ErrorKind) else str(v),
)
def test_each_family_has_its_http_status(kind: ErrorKind, status: int) -> None:
    assert kind.status == status


def test_an_engine_error_carries_its_kind_detail_and_data() -> None:
    err = EngineError(errors.MAC_IN_USE, "MAC 56:6f:1a:00:00:2a is taken")
    assert (err.kind, err.detail, err.data) == (errors.MAC_IN_USE, "MAC 56:6f:1a:00:00:2a is taken", {})
    assert str(err) == "MAC_ADDRESS_IN_USE: MAC 56:6f:1a:00:00:2a is taken"


# -- what the admin page enables: the same rules, asked ahead of time ----------------------------


def test_a_plugged_nic_of_a_running_vm_can_only_be_deactivated() -> None:
    vm, nic = make_vm(status="up"), make_nic(plugged=True)
    refused = rules.nic_action_refusals(vm, make_cluster(), nic)
    assert set(refused) == {"activate", "edit", "remove"}
    assert "deactivate it (or stop the VM) before editing it" in refused["edit"]
    assert "already plugged" in refused["activate"]


def test_an_unplugged_nic_of_a_running_vm_can_be_activated_edited_and_removed() -> None:
    refused = rules.nic_action_refusals(make_vm(status="up"), make_cluster(), make_nic(plugged=False))
    assert set(refused) == {"deactivate"}


def test_on_an_old_cluster_plugging_a_running_vm_is_refused_for_the_same_reason_the_engine_gives() -> None:
    vm, cluster = make_vm(status="up"), make_cluster(3, 0)
    refused = rules.nic_action_refusals(vm, cluster, make_nic(plugged=False))
    with pytest.raises(EngineError) as raised:
        rules.hotplug_supported(vm, cluster)
    assert refused["activate"] == raised.value.detail


def test_a_down_vm_allows_every_nic_change() -> None:
    refused = rules.nic_action_refusals(make_vm(status="down"), make_cluster(3, 0), make_nic(plugged=True))
    assert set(refused) == {"activate"}  # only: it is plugged already


@pytest.mark.parametrize(("status", "refused"), [("down", {"stop"}), ("up", {"start"}), ("paused", {"start"})])
def test_vm_actions_follow_its_status(status: str, refused: set[str]) -> None:
    assert set(rules.vm_action_refusals(make_vm(status=status))) == refused


@pytest.mark.parametrize("status", ["paused", "migrating", "powering_down", "not_responding"])
def test_a_plugged_nic_of_a_vm_that_is_not_down_can_be_neither_edited_nor_removed(status: str) -> None:
    vm, nic = make_vm(status=status), make_nic(plugged=True)
    for rule, kind in (
        (rules.update_allowed, errors.UPDATE_PLUGGED_RUNNING),
        (rules.remove_allowed, errors.REMOVE_PLUGGED_RUNNING),
    ):
        with pytest.raises(EngineError) as refused:
            rule(vm, nic)
        assert refused.value.kind is kind
        assert f"which is {status.replace('_', ' ')}" in refused.value.detail
    rules.update_allowed(vm, make_nic(plugged=False))  # unplugged: fine in any state
