"""oVirt API v4 shapes (JSON) for the engine's objects, and the parsing of request bodies.

Names and values follow ovirt-engine-api-model: a NIC has name, interface (the model),
mac.address, linked, plugged, vnic_profile; a VM has cluster, os.type / kernel / initrd /
cmdline, memory in bytes, status, bios.type and custom_emulated_machine; a cluster has version
{major, minor}.  One addition: a NIC
carries the PCI ``address`` its device holds (oVirt keeps it in vm_device but does not show it).
"""

from __future__ import annotations

from typing import Any

from engine.api.formats import Reply, XmlText
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.limits import shown, whole_number
from engine.domain.model import (
    AuditEntry,
    Cluster,
    DataCenter,
    Disk,
    Host,
    MacPool,
    Network,
    NetworkQos,
    Nic,
    Version,
    Vm,
    VnicProfile,
    bios_for,
)
from engine.services.disks import DiskFields
from engine.services.macpools import MacPoolFields
from engine.services.nics import NicFields
from engine.services.profiles import NO_QOS, ProfileFields, QosFields
from engine.services.views import Caller
from shared_schema.answers import PlacedNic

Json = dict[str, Any]
# An item's tag -> its collection's tag (XML roots; oVirt's names).
PLURALS = {
    "data_center": "data_centers", "cluster": "clusters", "host": "hosts", "network": "networks",
    "vnic_profile": "vnic_profiles", "vm": "vms", "nic": "nics", "event": "events",
    "network_filter_parameter": "network_filter_parameters", "reported_device": "reported_devices",
    "statistic": "statistics", "qos": "qoss", "disk_attachment": "disk_attachments", "mac_pool": "mac_pools",
}  # fmt: skip
# What a NIC links to besides itself (path segment -> item tag): kept empty here.
NIC_SUBCOLLECTIONS = {
    "networkfilterparameters": "network_filter_parameter", "reporteddevices": "reported_device",
    "statistics": "statistic",
}  # fmt: skip


def link(prefix: str, collection: str, object_id: str) -> Json:
    return {"id": object_id, "href": f"{prefix}/{collection}/{object_id}"}


COLLECTIONS = ("datacenters", "clusters", "hosts", "networks", "vnicprofiles", "vms", "events", "macpools")


def api_root_json(prefix: str, caller: Caller) -> Json:
    return {
        "product_info": {"name": "hotplug-nic engine", "vendor": "hotplug-nic", "version": {"major": 4, "minor": 7}},
        "authenticated_user": {"user_name": caller.user, "role": caller.role},
        "link": [{"rel": n, "href": f"{prefix}/{n}"} for n in COLLECTIONS],
    }


def _links(prefix: str, base: str, *rels: str) -> list[Json]:
    return [{"rel": rel, "href": f"{prefix}/{base}/{rel}"} for rel in rels]


def data_center_json(prefix: str, dc: DataCenter) -> Json:
    return {**link(prefix, "datacenters", dc.id), "name": dc.name, "description": dc.description,
            "link": _links(prefix, f"datacenters/{dc.id}", "clusters", "networks", "qoss")}  # fmt: skip


def cluster_json(prefix: str, c: Cluster) -> Json:
    return {**link(prefix, "clusters", c.id), "name": c.name, "description": c.description,
            "version": {"major": c.version.major, "minor": c.version.minor},
            "data_center": link(prefix, "datacenters", c.data_center_id),
            "link": _links(prefix, f"clusters/{c.id}", "networks")}  # fmt: skip


def host_json(prefix: str, h: Host) -> Json:
    body: Json = {**link(prefix, "hosts", h.id), "name": h.name, "address": h.address, "port": h.port,
                  "status": h.status, "cluster": link(prefix, "clusters", h.cluster_id)}  # fmt: skip
    if h.last_seen is not None:
        body["last_seen"] = h.last_seen.isoformat()  # extension: when its agent last answered
    return body


def network_json(prefix: str, n: Network) -> Json:
    """oVirt's network, with ``bridge`` (VDSM's) and the clusters it is attached to (an extension)."""
    return {**link(prefix, "networks", n.id), "name": n.name, "bridge": n.bridge,
            "data_center": link(prefix, "datacenters", n.data_center_id),
            "clusters": {"cluster": [link(prefix, "clusters", c) for c in sorted(n.cluster_ids)]},
            "usages": {"usage": ["vm"]},
            "link": _links(prefix, f"networks/{n.id}", "vnicprofiles")}  # fmt: skip


def qos_href(prefix: str, data_center_id: str, qos_id: str) -> Json:
    return {"id": qos_id, "href": f"{prefix}/datacenters/{data_center_id}/qoss/{qos_id}"}


def profile_json(prefix: str, p: VnicProfile) -> Json:
    """oVirt's vnic_profile: port_mirroring, pass_through.mode, the qos it links (a QoS of its
    network's data center)."""
    body: Json = {**link(prefix, "vnicprofiles", p.id), "name": p.name, "description": p.description,
                  "port_mirroring": p.port_mirroring,
                  "pass_through": {"mode": "enabled" if p.pass_through else "disabled"},
                  "network": link(prefix, "networks", p.network_id)}  # fmt: skip
    if p.qos_id:
        body["qos"] = qos_href(prefix, p.data_center_id, p.qos_id)
    return body


def qos_json(prefix: str, q: NetworkQos) -> Json:
    """oVirt's qos, type network: rates in Mbps (average, peak) and MB (burst); a direction without
    shaping has none of its three."""
    body: Json = {**qos_href(prefix, q.data_center_id, q.id), "name": q.name, "description": q.description,
                  "type": "network", "data_center": link(prefix, "datacenters", q.data_center_id)}  # fmt: skip
    for direction, rate in (("inbound", q.inbound), ("outbound", q.outbound)):
        if rate is not None:
            body |= {f"{direction}_average": rate.average, f"{direction}_peak": rate.peak,
                     f"{direction}_burst": rate.burst}  # fmt: skip
    return body


def mac_pool_json(prefix: str, pool: MacPool) -> Json:
    """oVirt's mac_pool: the one pool here, the default one, which allows no duplicate MACs; its
    ranges in the order NICs take MACs from them."""
    return {**link(prefix, "macpools", pool.id), "name": pool.name, "description": pool.description,
            "allow_duplicates": False, "default_pool": True,
            "ranges": {"range": [{"from": first, "to": last} for first, last in pool.ranges]}}  # fmt: skip


def vm_json(prefix: str, vm: Vm, disabled: dict[str, str] | None = None, unmanaged: tuple[PlacedNic, ...] = ()) -> Json:
    body: Json = {
        **link(prefix, "vms", vm.id),
        "name": vm.name,
        "status": vm.status,
        "memory": vm.memory_bytes,
        "cluster": link(prefix, "clusters", vm.cluster_id),
        "os": {"type": vm.os_type, "kernel": vm.kernel, "initrd": vm.initrd, "cmdline": vm.cmdline},
        "bios": {"type": vm.bios_type},
        "custom_properties": {"custom_property": [{"name": k, "value": v} for k, v in vm.custom_properties.items()]},
        "actions": {"link": [{"rel": r, "href": f"{prefix}/vms/{vm.id}/{r}"} for r in ("start", "stop")]},
        "link": [{"rel": rel, "href": f"{prefix}/vms/{vm.id}/{rel}"} for rel in ("nics", "diskattachments")],
    }
    if vm.custom_emulated_machine:
        body["custom_emulated_machine"] = vm.custom_emulated_machine
    if vm.host_id:
        body["host"] = link(prefix, "hosts", vm.host_id)
    if disabled is not None:
        body["disabled_actions"] = disabled
    if unmanaged:  # extension: NICs its host reports that the engine does not manage
        body["unmanaged_nics"] = {"unmanaged_nic": [
            {"alias": n.alias, "mac": {"address": n.mac}, **({"address": n.address.to_params()} if n.address else {})}
            for n in unmanaged
        ]}  # fmt: skip
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
        "link": [{"rel": rel, "href": f"{base}/{rel}"} for rel in NIC_SUBCOLLECTIONS],
    }
    if nic.profile_id:
        body["vnic_profile"] = link(prefix, "vnicprofiles", nic.profile_id)
    if nic.address:
        body["address"] = nic.address.to_params()
    if disabled is not None:
        body["disabled_actions"] = disabled
    return body


def disk_attachment_json(prefix: str, d: Disk) -> Json:
    """oVirt's disk_attachment with its disk inline (there is no /disks here): the disk's name is
    the image file of the hosts' images directory it is."""
    return {"id": d.id, "href": f"{prefix}/vms/{d.vm_id}/diskattachments/{d.id}", "active": True,
            "bootable": d.bootable, "interface": d.interface, "read_only": d.read_only,
            "disk": {"id": d.id, "name": d.name, "format": d.format, "storage_type": "image"},
            "vm": link(prefix, "vms", d.vm_id)}  # fmt: skip


def event_json(prefix: str, e: AuditEntry) -> Json:
    body: Json = {"id": str(e.id), "code": e.log_type, "severity": e.severity, "description": e.message,
                  "time": e.time.isoformat(), "user": {"user_name": e.user}}  # fmt: skip
    if e.vm_id:
        body["vm"] = link(prefix, "vms", e.vm_id)
    if e.nic_id:
        body["nic"] = {"id": e.nic_id, "name": e.nic_name}
    if e.host_id:
        body["host"] = {**link(prefix, "hosts", e.host_id), "name": e.host_name}
    return body


def collection(item: str, items: list[Json]) -> Reply:
    """``{item: [...]}`` in JSON, ``<items><item/>…</items>`` in XML."""
    return Reply(PLURALS[item], {item: items})


def action_done(kind: str, obj: Json) -> Reply:
    """An action's answer, as oVirt's: ``<action><status>complete</status><nic>…</nic></action>``."""
    return Reply("action", {"status": "complete", kind: obj})


def removed() -> Reply:
    """DELETE answers 200 with a body (the oVirt SDK treats 204 as an error)."""
    return Reply("action", {})


# -- request bodies ---------------------------------------------------------------------------
# Each field must have the type the OpenAPI document gives it: an object where a string belongs is
# refused, never stringified, and so is null (leave a field out to leave it alone).  Text rules
# (no NUL, valid Unicode) were applied to the whole body when it was read (formats.read_body);
# names and ranges are the use cases' rules (engine/domain/limits.py).
_KIND_NAMES: dict[type, str] = {str: "text", dict: "an object", list: "a list"}


def _get(body: Json, key: str, kind: type, where: str = "") -> Any:
    if key not in body:
        return None
    value = body[key]
    if kind is dict and isinstance(value, XmlText) and not value.strip():
        return {}  # an XML element with nothing in it, where an object belongs: an empty one
    if not isinstance(value, kind):
        raise EngineError(errors.INVALID, f"{where}{key} must be {_KIND_NAMES[kind]}, got {shown(value)}")
    return value


def text(body: Json, key: str) -> str:
    """A text field; '' when absent.  Anything but text (an object, a number, null) is a 400."""
    value: str | None = _get(body, key, str)
    return value or ""


def port(body: Json) -> int:
    return whole_number("port", body.get("port", 54321))


def required_id(body: Json) -> str:
    """The ``id`` of the object a body names (``<network id="…"/>``)."""
    object_id = body.get("id")
    if not isinstance(object_id, str) or not object_id:
        raise EngineError(errors.INVALID, "name the object by its id")
    return object_id


def ref_id(body: Json, key: str) -> str | None:
    ref = _get(body, key, dict)
    if ref is None:
        return None
    object_id = ref.get("id")
    if not isinstance(object_id, str):
        raise EngineError(errors.INVALID, f"{key}.id must be given as a string")
    return object_id


def flag(value: Any, key: str) -> bool:
    """true or false: a JSON boolean, or its text (XML, a query parameter)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise EngineError(errors.INVALID, f"{key} must be true or false, got {shown(value)}")


def _flag(body: Json, key: str) -> bool | None:
    return flag(body[key], key) if key in body else None


def nic_fields(body: Json) -> tuple[NicFields, bool | None]:
    """(the fields to set, the requested plugged state or None)."""
    mac = _get(body, "mac", dict)
    if mac is not None and "address" not in mac:
        raise EngineError(errors.INVALID, "mac needs an address (or leave mac out)")
    fields = NicFields(
        name=_get(body, "name", str),
        model=_get(body, "interface", str),
        mac=_get(mac, "address", str, "mac.") if mac is not None else None,
        profile_id=ref_id(body, "vnic_profile"),
        linked=_flag(body, "linked"),
    )
    return fields, _flag(body, "plugged")


def _optional_number(body: Json, key: str) -> int | None:
    return whole_number(key, body[key]) if body.get(key) is not None else None


def profile_fields(body: Json, network_id: str | None = None) -> ProfileFields:
    """A vnic_profile body; ``network_id``: the network of the path (/networks/{id}/vnicprofiles)."""
    pass_through = _get(body, "pass_through", dict)
    mode = _get(pass_through, "mode", str, "pass_through.") if pass_through else None
    if mode not in (None, "enabled", "disabled"):
        raise EngineError(errors.INVALID, f"pass_through.mode must be enabled or disabled, got {shown(mode)}")
    qos = _get(body, "qos", dict)
    qos_id = None if qos is None else (ref_id(body, "qos") if "id" in qos else NO_QOS)
    return ProfileFields(
        name=_get(body, "name", str),
        description=_get(body, "description", str),
        network_id=network_id or ref_id(body, "network"),
        port_mirroring=_flag(body, "port_mirroring"),
        pass_through=None if mode is None else mode == "enabled",
        qos_id=qos_id,
    )


QOS_RATES = tuple(f"{d}_{p}" for d in ("inbound", "outbound") for p in ("average", "peak", "burst"))


def qos_fields(body: Json) -> QosFields:
    rates = {key: _optional_number(body, key) for key in QOS_RATES}
    return QosFields(
        name=_get(body, "name", str), description=_get(body, "description", str), type=_get(body, "type", str),
        **rates,
    )  # fmt: skip


def mac_pool_fields(body: Json) -> MacPoolFields:
    """A mac_pool body; ``ranges`` (``{"range": [{"from", "to"}, …]}``, ``<ranges><range><from/><to/>
    </range>…</ranges>``) replaces the pool's ranges as a whole."""
    ranges = _get(body, "ranges", dict)
    return MacPoolFields(
        name=_get(body, "name", str), description=_get(body, "description", str),
        allow_duplicates=_flag(body, "allow_duplicates"), default_pool=_flag(body, "default_pool"),
        ranges=None if ranges is None else _mac_ranges(ranges),
    )  # fmt: skip


def _mac_ranges(ranges: Json) -> tuple[tuple[str, str], ...]:
    found = []
    for number, item in enumerate(_get(ranges, "range", list, "ranges.") or [], 1):
        if not isinstance(item, dict) or "from" not in item or "to" not in item:
            raise EngineError(errors.INVALID_MAC_RANGE, f"range {number} needs from and to: {{from: <MAC>, to: <MAC>}}")
        where = f"ranges.range[{number}]."
        found.append((str(_get(item, "from", str, where)), str(_get(item, "to", str, where))))
    return tuple(found)


def disk_fields(body: Json) -> DiskFields:
    """A disk_attachment body: its disk given inline, by image file name and format."""
    disk = _get(body, "disk", dict)
    if disk is None:
        raise EngineError(errors.INVALID, "a disk attachment needs its disk: {name: <image file>, format: raw|cow}")
    if "id" in disk:
        raise EngineError(
            errors.INVALID, "this engine keeps no disks apart from VMs: give the disk's name (an image file) and format"
        )
    name, fmt = _get(disk, "name", str, "disk."), _get(disk, "format", str, "disk.")
    if not name or not fmt:
        raise EngineError(
            errors.INVALID, "disk.name (an image file of the hosts) and disk.format (raw or cow) are needed"
        )
    if _flag(body, "active") is False:
        raise EngineError(
            errors.INVALID, "active must be true: a disk of a VM is always active here (no disk hot plug)"
        )
    return DiskFields(name=name, format=fmt, interface=_get(body, "interface", str) or "virtio",
                      bootable=bool(_flag(body, "bootable")), read_only=bool(_flag(body, "read_only")))  # fmt: skip


def _custom_properties(body: Json) -> dict[str, str]:
    props = (_get(body, "custom_properties", dict) or {}).get("custom_property", [])
    if not isinstance(props, list) or not all(
        isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("value", ""), str | None)
        for p in props
    ):
        raise EngineError(errors.INVALID, "custom_properties.custom_property must be a list of {name, value} texts")
    return {p["name"]: p.get("value") or "" for p in props}  # a value left out (or null) is empty


def vm_from_body(body: Json) -> Vm:
    name = _get(body, "name", str)
    cluster_id = ref_id(body, "cluster")
    if not name or not cluster_id:
        raise EngineError(errors.INVALID, "a VM needs a name and a cluster (cluster.id)")
    os_ = _get(body, "os", dict) or {}
    machine = _get(body, "custom_emulated_machine", str) or ""
    bios = _get(_get(body, "bios", dict) or {}, "type", str, "bios.")
    return Vm(
        id="",
        name=name,
        cluster_id=cluster_id,
        os_type=_get(os_, "type", str, "os.") or "other",
        status="down",
        memory_bytes=whole_number("memory", body.get("memory", 128 * 1024 * 1024)),  # bytes; the rules check the range
        kernel=_get(os_, "kernel", str, "os.") or "",
        initrd=_get(os_, "initrd", str, "os.") or "",
        cmdline=_get(os_, "cmdline", str, "os.") or "",
        custom_properties=_custom_properties(body),
        bios_type=bios_for(bios, machine),
        custom_emulated_machine=machine,
    )


def version_from_body(body: Json) -> Version:
    version = _get(body, "version", dict)
    if version is None:
        return Version(4, 7)
    if "major" not in version or "minor" not in version:
        raise EngineError(errors.INVALID, f"version must be {{major, minor}}, got {shown(version)}")
    return Version(whole_number("version.major", version["major"]), whole_number("version.minor", version["minor"]))


def placement_host(body: Json) -> str | None:
    """The host asked for in a start action: ``{"vm": {"placement_policy": {"hosts": {"host": [{"id"}]}}}}``."""
    node: Json | None = body
    where = ""
    for key in ("vm", "placement_policy", "hosts"):
        node = _get(node, key, dict, where) if node is not None else None
        where += f"{key}."
    hosts = _get(node, "host", list, where) if node is not None else None
    if not hosts:
        return None
    if not all(isinstance(h, dict) and isinstance(h.get("id"), str) for h in hosts):
        raise EngineError(errors.INVALID, "vm.placement_policy.hosts.host must be a list of {id}")
    return str(hosts[0]["id"])
