"""oVirt API v4 shapes (JSON) for the engine's objects, and the parsing of request bodies.

Names and values follow ovirt-engine-api-model: a NIC has name, interface (the model),
mac.address, linked, plugged, vnic_profile; a VM has cluster, os.type / kernel / initrd /
cmdline, memory in bytes, status; a cluster has version {major, minor}.  One addition: a NIC
carries the PCI ``address`` its device holds (oVirt keeps it in vm_device but does not show it).
"""

from __future__ import annotations

from typing import Any

from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.model import AuditEntry, Cluster, Host, Network, Nic, Version, Vm, VnicProfile
from engine.services.nics import NicFields
from engine.services.views import Caller

Json = dict[str, Any]


def link(prefix: str, collection: str, object_id: str) -> Json:
    return {"id": object_id, "href": f"{prefix}/{collection}/{object_id}"}


COLLECTIONS = ("clusters", "hosts", "networks", "vnicprofiles", "vms", "events")


def api_root_json(prefix: str, caller: Caller) -> Json:
    return {
        "product_info": {"name": "hotplug-nic engine", "vendor": "hotplug-nic", "version": {"major": 4, "minor": 7}},
        "authenticated_user": {"user_name": caller.user, "role": caller.role},
        "link": [{"rel": n, "href": f"{prefix}/{n}"} for n in COLLECTIONS],
    }


def cluster_json(prefix: str, c: Cluster) -> Json:
    return {**link(prefix, "clusters", c.id), "name": c.name, "description": c.description,
            "version": {"major": c.version.major, "minor": c.version.minor}}  # fmt: skip


def host_json(prefix: str, h: Host) -> Json:
    return {**link(prefix, "hosts", h.id), "name": h.name, "address": h.address, "port": h.port, "status": h.status,
            "cluster": link(prefix, "clusters", h.cluster_id)}  # fmt: skip


def network_json(prefix: str, n: Network) -> Json:
    return {**link(prefix, "networks", n.id), "name": n.name, "bridge": n.bridge,
            "cluster": link(prefix, "clusters", n.cluster_id)}  # fmt: skip


def profile_json(prefix: str, p: VnicProfile) -> Json:
    return {**link(prefix, "vnicprofiles", p.id), "name": p.name, "port_mirroring": p.port_mirroring,
            "network": link(prefix, "networks", p.network_id)}  # fmt: skip


def vm_json(prefix: str, vm: Vm, disabled: dict[str, str] | None = None) -> Json:
    body: Json = {
        **link(prefix, "vms", vm.id),
        "name": vm.name,
        "status": vm.status,
        "memory": vm.memory_bytes,
        "cluster": link(prefix, "clusters", vm.cluster_id),
        "os": {"type": vm.os_type, "kernel": vm.kernel, "initrd": vm.initrd, "cmdline": vm.cmdline},
        "custom_properties": {"custom_property": [{"name": k, "value": v} for k, v in vm.custom_properties.items()]},
        "actions": {"link": [{"rel": r, "href": f"{prefix}/vms/{vm.id}/{r}"} for r in ("start", "stop")]},
        "link": [{"rel": "nics", "href": f"{prefix}/vms/{vm.id}/nics"}],
    }
    if vm.host_id:
        body["host"] = link(prefix, "hosts", vm.host_id)
    if disabled is not None:
        body["disabled_actions"] = disabled
    return body


def nic_json(prefix: str, nic: Nic, disabled: dict[str, str] | None = None) -> Json:
    """``disabled``: action -> why the engine would refuse it now (an extension for the admin page)."""
    base = f"{prefix}/vms/{nic.vm_id}/nics/{nic.id}"
    body: Json = {
        "id": nic.id,
        "href": base,
        "name": nic.name,
        "interface": nic.model,
        "mac": {"address": nic.mac},
        "linked": nic.linked,
        "plugged": nic.plugged,
        "vm": link(prefix, "vms", nic.vm_id),
        "actions": {"link": [{"rel": r, "href": f"{base}/{r}"} for r in ("activate", "deactivate")]},
    }
    if nic.profile_id:
        body["vnic_profile"] = link(prefix, "vnicprofiles", nic.profile_id)
    if nic.address:
        body["address"] = nic.address.to_params()
    if disabled is not None:
        body["disabled_actions"] = disabled
    return body


def event_json(prefix: str, e: AuditEntry) -> Json:
    body: Json = {"id": str(e.id), "code": e.log_type, "severity": e.severity, "description": e.message,
                  "time": e.time.isoformat(), "user": {"user_name": e.user}}  # fmt: skip
    if e.vm_id:
        body["vm"] = link(prefix, "vms", e.vm_id)
    if e.nic_id:
        body["nic"] = {"id": e.nic_id, "name": e.nic_name}
    return body


def collection(name: str, items: list[Json]) -> Json:
    return {name: items}


# -- request bodies ---------------------------------------------------------------------------


def _get(body: Json, key: str, kind: type, where: str) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        raise EngineError(errors.INVALID, f"{where}{key} must be {kind.__name__}, got {value!r}")
    return value


def ref_id(body: Json, key: str) -> str | None:
    ref = _get(body, key, dict, "")
    if ref is None:
        return None
    object_id = ref.get("id")
    if not isinstance(object_id, str):
        raise EngineError(errors.INVALID, f"{key}.id must be given as a string")
    return object_id


def _bool(value: Any, key: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise EngineError(errors.INVALID, f"{key} must be true or false, got {value!r}")


def nic_fields(body: Json) -> tuple[NicFields, bool | None]:
    """(the fields to set, the requested plugged state or None)."""
    mac = _get(body, "mac", dict, "")
    fields = NicFields(
        name=_get(body, "name", str, ""),
        model=_get(body, "interface", str, ""),
        mac=_get(mac, "address", str, "mac.") if mac else None,
        profile_id=ref_id(body, "vnic_profile"),
        linked=_bool(body.get("linked"), "linked"),
    )
    return fields, _bool(body.get("plugged"), "plugged")


def vm_from_body(body: Json) -> Vm:
    name = _get(body, "name", str, "")
    cluster_id = ref_id(body, "cluster")
    if not name or not cluster_id:
        raise EngineError(errors.INVALID, "a VM needs a name and a cluster (cluster.id)")
    os_ = _get(body, "os", dict, "") or {}
    memory = body.get("memory", 128 * 1024 * 1024)
    try:
        if isinstance(memory, bool):
            raise ValueError
        memory = int(memory)  # oVirt's JSON may send numbers as strings
        if memory <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise EngineError(errors.INVALID, f"memory must be a positive number of bytes, got {memory!r}") from None
    props = (_get(body, "custom_properties", dict, "") or {}).get("custom_property", [])
    if not isinstance(props, list) or not all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in props):
        raise EngineError(errors.INVALID, "custom_properties.custom_property must be a list of {name, value}")
    return Vm(
        id="",
        name=name,
        cluster_id=cluster_id,
        os_type=_get(os_, "type", str, "os.") or "other",
        status="down",
        memory_bytes=memory,
        kernel=_get(os_, "kernel", str, "os.") or "",
        initrd=_get(os_, "initrd", str, "os.") or "",
        cmdline=_get(os_, "cmdline", str, "os.") or "",
        custom_properties={p["name"]: "" if p.get("value") is None else str(p["value"]) for p in props},
    )


def name_search(search: str) -> str | None:
    """``search=name=<VM name>``: the only search the engine understands yet."""
    if not search:
        return None
    key, _, value = search.partition("=")
    if key.strip() != "name" or not value:
        raise EngineError(errors.INVALID, f"only 'search=name=<VM name>' is supported, got {search!r}")
    return value.strip()


def version_from_body(body: Json) -> Version:
    version = _get(body, "version", dict, "")
    if version is None:
        return Version(4, 7)
    try:
        return Version(int(version["major"]), int(version["minor"]))
    except (KeyError, TypeError, ValueError):
        raise EngineError(errors.INVALID, f"version must be {{major, minor}}, got {version!r}") from None


def placement_host(body: Json) -> str | None:
    """The host asked for in a start action: ``{"vm": {"placement_policy": {"hosts": {"host": [{"id"}]}}}}``."""
    node: Any = body
    for key in ("vm", "placement_policy", "hosts"):
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return None
    hosts = node.get("host") if isinstance(node, dict) else None
    if not hosts:
        return None
    if not isinstance(hosts, list) or not isinstance(hosts[0], dict) or not isinstance(hosts[0].get("id"), str):
        raise EngineError(errors.INVALID, "vm.placement_policy.hosts.host must be a list of {id}")
    return str(hosts[0]["id"])
