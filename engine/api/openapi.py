"""The API as an OpenAPI 3.0 document, served without a token at ``{prefix}/openapi.json``.

Paths and methods come from ``routes.ROUTES`` (never written twice); ``_OPS`` describes each
handler by name.  A route whose handler is not described makes :func:`document` fail, and so
the test that compares the document with the routes the engine serves.  The request schemas state
the limits of ``engine/domain/limits.py`` (lengths, patterns, ranges, types) from its constants;
``tests/integration/test_api_fuzz.py`` holds the engine to them.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from engine.api import routes
from engine.api.paths import LOGOUT_PATH, OPENAPI, TOKEN_PATH, prefix_of
from engine.api.representation import QOS_RATES
from engine.domain import limits, search
from engine.domain.model import (
    BIOS_TYPES,
    CLUSTER_DEFAULT,
    I440FX_SEA_BIOS,
    Q35_OVMF,
    Q35_SEA_BIOS,
    Q35_SECURE_BOOT,
)
from engine.domain.os_types import OS_TYPES
from engine.domain.rules import DISK_FORMATS, DISK_INTERFACES
from shared_schema.nic import DEVICE_NAME_PATTERN, DEVICE_NAME_RULE, MODELS
from shared_schema.vm import IMAGE_NAME_RULE, MACHINE_PATTERN, MACHINE_RULE

Json = dict[str, Any]

_FAULTS = {
    400: "Invalid request: a malformed body, a missing or wrong field, text with a NUL character (anywhere)",
    401: "Unauthorized: no bearer token, or an unknown or expired one",
    403: "Forbidden: the user may read but not change anything",
    404: "Not found: the object, or one the request refers to, does not exist",
    409: "Operation failed: a rule refuses it in the current state, or a name or MAC is in use",
    502: "Host failed: the host refused (its reason in detail, its code in data.hostCode); the database is unchanged",
    503: "Host not responding: the database is unchanged; repeat the request once the host answers",
}

# Bodies that may be empty (a start needs none; an update with nothing in it changes nothing).
UPDATES = ("StartVmInput", "NicInput", "VnicProfileUpdate", "QosUpdate", "MacPoolUpdate")
# handler name: (summary, success status, response schema, request body schema, fault statuses).
# 400 and 401 (every operation: text the engine cannot keep may come in any path or query) and 403
# (every change) are added by _operation.
_OPS: dict[str, tuple[str, int, str, str | None, tuple[int, ...]]] = {
    "api_root": ("The entry point: product information and links to the collections", 200, "ApiRoot", None, ()),
    "list_data_centers": ("List the data centers", 200, "DataCenterList", None, (400,)),
    "add_data_center": ("Add a data center", 201, "DataCenter", "DataCenterInput", (400, 409)),
    "get_data_center": ("Get a data center", 200, "DataCenter", None, (404,)),
    "list_data_center_clusters": ("List the clusters of a data center", 200, "ClusterList", None, (404,)),
    "list_data_center_networks": ("List the networks of a data center", 200, "NetworkList", None, (404,)),
    "list_clusters": ("List the clusters", 200, "ClusterList", None, (400,)),
    "add_cluster": ("Add a cluster to a data center (default: the one named Default, made when missing)", 201,
                    "Cluster", "ClusterInput", (400, 404, 409)),
    "get_cluster": ("Get a cluster", 200, "Cluster", None, (404,)),
    "list_cluster_networks": ("List the networks attached to a cluster (its VMs' NICs may use them)", 200,
                              "NetworkList", None, (404,)),
    "attach_cluster_network": ("Attach a network of the cluster's data center to the cluster", 201, "Network",
                               "NetworkRef", (400, 404)),
    "list_hosts": ("List the hosts", 200, "HostList", None, (400,)),
    "add_host": ("Add a host; it is up if its agent answers a ping, else non_responsive", 201, "Host", "HostInput",
                 (400, 404, 409)),
    "get_host": ("Get a host", 200, "Host", None, (404,)),
    "list_networks": ("List the networks", 200, "NetworkList", None, (400,)),
    "add_network": ("Add a network to a data center (or, given a cluster, to its data center, attached to it), "
                    "on a bridge, with a vNIC profile of the same name", 201, "Network", "NetworkInput",
                    (400, 404, 409)),
    "get_network": ("Get a network", 200, "Network", None, (404,)),
    "list_network_profiles": ("List the vNIC profiles of a network", 200, "VnicProfileList", None, (400, 404)),
    "add_network_profile": ("Add a vNIC profile to the network", 201, "VnicProfile", "NetworkVnicProfileInput",
                            (400, 404, 409)),
    "get_network_profile": ("Get a vNIC profile of the network", 200, "VnicProfile", None, (404,)),
    "remove_network_profile": ("Remove a vNIC profile of the network that no NIC uses", 200, "Empty", None,
                               (404, 409)),
    "list_profiles": ("List the vNIC profiles", 200, "VnicProfileList", None, (400,)),
    "add_profile": ("Add a vNIC profile to a network: port mirroring, SR-IOV pass-through (kept, but no NIC of it "
                    "is plugged: this engine manages no virtual functions), a QoS of the network's data center",
                    201, "VnicProfile", "VnicProfileInput", (400, 404, 409)),
    "get_profile": ("Get a vNIC profile", 200, "VnicProfile", None, (404,)),
    "update_profile": ("Change a vNIC profile; its port mirroring, QoS and pass-through not while NICs plugged into "
                       "running VMs use it", 200, "VnicProfile", "VnicProfileUpdate", (400, 404, 409)),
    "remove_profile": ("Remove a vNIC profile that no NIC uses", 200, "Empty", None, (404, 409)),
    "list_qoss": ("List the network QoS entries of a data center", 200, "QosList", None, (404,)),
    "add_qos": ("Add a network QoS to a data center (type network; Mbps and MB, oVirt's units)", 201, "Qos",
                "QosInput", (400, 404, 409)),
    "get_qos": ("Get a network QoS of a data center", 200, "Qos", None, (404,)),
    "update_qos": ("Change a network QoS; its rates not while NICs plugged into running VMs use it", 200, "Qos",
                   "QosUpdate", (400, 404, 409)),
    "remove_qos": ("Remove a network QoS that no vNIC profile uses", 200, "Empty", None, (404, 409)),
    "list_mac_pools": ("List the MAC pools: one here, oVirt's Default pool, which every NIC's MAC comes from", 200,
                       "MacPoolList", None, ()),
    "get_mac_pool": ("Get the MAC pool", 200, "MacPool", None, (404,)),
    "update_mac_pool": ("Change the MAC pool: name, description, and its ranges, replaced as a whole (the next "
                        "NIC add takes the first free MAC of the new ranges; MACs in use outside them stay)", 200,
                        "MacPool", "MacPoolUpdate", (400, 404, 409)),
    "list_events": ("List the audit log, newest first (at most 200)", 200, "EventList", None, ()),
    "list_vms": ("List the VMs", 200, "VmList", None, (400,)),
    "add_vm": ("Add a VM; it is down. bios.type q35_sea_bios (or a q35 custom_emulated_machine) makes it a "
               "q35 (PCIe) guest", 201, "Vm", "VmInput", (400, 404, 409)),
    "get_vm": ("Get a VM", 200, "Vm", None, (404,)),
    "remove_vm": ("Remove a VM that is down, with its NICs", 200, "Empty", None, (404, 409)),
    "start_vm": ("Run a VM on a host that is up in its cluster (the one given, else the first); "
                 "only its plugged NICs go to the host", 200, "ActionResult", "StartVmInput",
                 (400, 404, 409, 502, 503)),
    "stop_vm": ("Stop a VM (nothing to do when it is down)", 200, "ActionResult", None, (404, 502, 503)),
    "list_disk_attachments": ("List the disks of a VM", 200, "DiskAttachmentList", None, (404,)),
    "add_disk_attachment": ("Attach a disk to a VM that is down: an image file of the hosts' images directory "
                            "(disk.name), raw or cow, virtio; bootable: the VM boots from it when it has no "
                            "os.kernel", 201, "DiskAttachment", "DiskAttachmentInput", (400, 404, 409)),
    "get_disk_attachment": ("Get a disk of a VM", 200, "DiskAttachment", None, (404,)),
    "remove_disk_attachment": ("Detach a disk from a VM that is down (the image file stays on the hosts)", 200,
                               "Empty", None, (404, 409)),
    "list_nics": ("List the NICs of a VM", 200, "NicList", None, (404,)),
    "add_nic": ("Add a NIC to a VM and plug it, unless plugged is false (or ?activate=false)", 201, "Nic",
                "NewNicInput", (400, 404, 409, 502, 503)),
    "get_nic": ("Get a NIC of a VM", 200, "Nic", None, (404,)),
    "update_nic": ("Change a NIC; of one plugged into a running VM only linked, which changes on its host at once "
                   "(no unplug); plugged plugs or unplugs it", 200, "Nic",
                   "NicInput", (400, 404, 409, 502, 503)),
    "remove_nic": ("Remove a NIC (not one plugged into a running VM)", 200, "Empty", None, (404, 409)),
    "activate_nic": ("Plug a NIC: hot-plug when the VM is running", 200, "ActionResult", None,
                     (400, 404, 409, 502, 503)),
    "deactivate_nic": ("Unplug a NIC: hot-unplug when the VM is running", 200, "ActionResult", None,
                       (404, 409, 502, 503)),
    **{f"list_nic_{what}": (f"A NIC's {what.replace('_', ' ')}: none are kept (an empty collection)", 200,
                            "EmptyList", None, (404,))
       for what in ("network_filter_parameters", "reported_devices", "statistics")},
}  # fmt: skip

_SEARCH = ("search", {"type": "string", "maxLength": search.MAX_LENGTH, "pattern": f"^{limits.TEXT_PATTERN}$",
                      "example": "name=web*"},
           "oVirt's search: field=value ('*' any run of characters; case-insensitive), '!=' negates, terms "
           "joined by 'and'; 'page N' at the end asks for the Nth run of max results (ordered by name)")  # fmt: skip
_MAX = ("max", {"type": "integer", "minimum": -1, "maximum": search.MAX_RESULTS, "not": {"enum": [0]}},
        f"at most this many results (ordered by name); -1 or none for all; a page holds {search.PAGE_SIZE} "
        "when the search names one without max")  # fmt: skip
_QUERY: dict[str, list[tuple[str, Json, str]]] = {
    **{op: [_SEARCH, _MAX] for op in ("list_vms", "list_clusters", "list_hosts", "list_networks", "list_profiles",
                                "list_network_profiles", "list_data_centers")},
    "list_events": [("vm", {"type": "string", "pattern": f"^{limits.TEXT_PATTERN}$"},
                     "only the events of the VM with this id")],
    "add_nic": [("activate", {"type": "boolean", "default": True}, "plug the NIC at once; the body's plugged wins")],
}  # fmt: skip
_PATH_PARAMS = {"id": "the object's id", "vm": "the VM's id", "nic": "the NIC's id",
                "profile": "the vNIC profile's id", "qos": "the QoS's id",
                "disk": "the disk attachment's id (the disk's)"}  # fmt: skip


_QOS_PARTS = (("average", limits.QOS_AVERAGE_MAX, "Mbps"), ("peak", limits.QOS_PEAK_MAX, "Mbps, at least the average"),
              ("burst", limits.QOS_BURST_MAX, "MB"))  # fmt: skip
_QOS_LIMITS = [(f"{d}_{p}", limit, unit) for d in ("inbound", "outbound") for p, limit, unit in _QOS_PARTS]


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(items: Json) -> Json:
    return {"type": "array", "items": items}


def _enum(*values: str) -> Json:
    return {"type": "string", "enum": list(values)}


def _obj(props: Json, *optional: str) -> Json:
    """An object whose properties are all required but ``optional``; more properties may appear."""
    return {"type": "object", "properties": props, "required": [k for k in props if k not in optional]}


def _in(props: Json, *required: str) -> Json:
    """A request object: only ``required`` must be given."""
    return {"type": "object", "properties": props, **({"required": list(required)} if required else {})}


def _xml(name: str, schema: Json, **extra: Any) -> Json:
    """A request body's schema, with the root element its XML form has (``<vm>…</vm>``)."""
    return {**schema, **extra, "xml": {"name": name}}


def _whole(low: int, high: int, int_format: str = "int32", **extra: Any) -> Json:
    """A whole number in [low, high]: a JSON number, or its decimal digits (oVirt's JSON, XML)."""
    digits = {"type": "string", "pattern": f"^{limits.DIGITS_PATTERN}$", "description": f"its digits, {low}-{high}"}
    number = {"type": "integer", "format": int_format, "minimum": low, "maximum": high}
    return {"oneOf": [number, digits], **extra}


def _only(value: bool, why: str) -> Json:
    """A flag that has one value here (a MAC pool's allow_duplicates, default_pool): it, or its word."""
    word = "".join(f"[{c.upper()}{c}]" for c in str(value).lower())
    return {"oneOf": [{"type": "boolean", "enum": [value]}, {"type": "string", "pattern": f"^{word}$"}],
            "description": why}  # fmt: skip


def _json(schema: Json, description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _both(schema: Json, description: str) -> Json:
    """An API answer: XML unless the client asks for JSON (the same data; see engine/api/formats.py)."""
    return {"description": description, "content": {"application/xml": {"schema": schema},
                                                    "application/json": {"schema": schema}}}  # fmt: skip


def _schemas() -> Json:
    s, i, b, link, rel = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, _ref("Link"), _ref("RelLink")
    named = {"id": s, "href": s, "name": s}
    actions = _obj({"link": _list(rel)})
    vm_status = _enum("down", "powering_up", "up", "powering_down", "paused", "migrating", "not_responding")
    memory = {"type": "integer", "format": "int64", "description": "bytes"}
    # What requests may carry (engine/domain/limits.py): names, free text, numbers (JSON numbers or,
    # as oVirt's JSON writes them, their digits), booleans (or their words, as XML has them).
    name = {
        "type": "string",
        "minLength": 1,
        "maxLength": limits.NAME_MAX_LENGTH,
        "pattern": f"^{limits.NAME_PATTERN}$",
        "description": limits.NAME_RULE,
    }
    text = {"type": "string", "pattern": f"^{limits.TEXT_PATTERN}$", "description": "any text but NUL"}
    image = {
        "type": "string",
        "maxLength": 255,
        "pattern": f"^[^/{limits.CONTROL_CHARACTERS}]*$",
        "description": IMAGE_NAME_RULE,
    }
    version = _whole(limits.VERSION_MIN, limits.VERSION_MAX)
    mac = {"type": "string", "pattern": f"^{limits.MAC_PATTERN}$", "description": "a unicast MAC address"}
    flag = {
        "oneOf": [
            b,
            {
                "type": "string",
                "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$",
                "description": "true or false as text (XML's), in any case",
            },
        ]
    }
    schemas: Json = {
        "Link": _obj({"id": s, "href": s}),
        "RelLink": _obj({"rel": s, "href": s}),
        "IdRef": _obj({"id": {**s, "xml": {"attribute": True}}}),  # oVirt's <cluster id="…"/>
        "NetworkRef": _xml("network", _obj({"id": {**s, "xml": {"attribute": True}}})),
        "Version": _obj({"major": i, "minor": i}),
        "ApiRoot": _obj({"product_info": _obj({"name": s, "vendor": s, "version": _ref("Version")}),
                         "authenticated_user": _obj({"user_name": s, "role": _enum("admin", "readonly")}),
                         "link": _list(rel)}),
        "DisabledActions": {"type": "object", "additionalProperties": s,
                            "description": "extension: action -> why the engine would refuse it now (GET only); on a "
                                           "NIC, edit is any change and edit_link a change of linked alone"},
        "DataCenter": _obj({**named, "description": s, "link": _list(rel)}),
        "Cluster": _obj({**named, "description": s, "version": _ref("Version"), "data_center": link,
                         "link": _list(rel)}),
        "Host": _obj({**named, "address": s, "port": i,
                      "status": _enum("up", "maintenance", "non_responsive", "down"), "cluster": link,
                      "last_seen": {"type": "string", "format": "date-time",
                                    "description": "extension: when its agent last answered a poll"}},
                     "last_seen"),
        "Network": _obj({**named, "bridge": s, "data_center": link, "clusters": _obj({"cluster": _list(link)}),
                         "usages": _obj({"usage": _list(_enum("vm"))}), "link": _list(rel)}),
        "VnicProfile": _obj({**named, "description": s, "port_mirroring": b,
                             "pass_through": _obj({"mode": _enum("enabled", "disabled")}), "network": link,
                             "qos": link}, "qos"),
        "DiskAttachment": _obj({"id": s, "href": s, "active": b, "bootable": b, "interface": _enum(*DISK_INTERFACES),
                                "read_only": b, "vm": link,
                                "disk": _obj({"id": s, "name": s, "format": _enum(*DISK_FORMATS),
                                              "storage_type": _enum("image")})}),
        "Qos": _obj({**named, "description": s, "type": _enum("network"), "data_center": link,
                     **{rate: i for rate in QOS_RATES}}, *QOS_RATES),
        "MacPool": _obj({**named, "description": s, "allow_duplicates": b, "default_pool": b,
                         "ranges": _obj({"range": _list(_obj({"from": s, "to": s}))})}),
        "Vm": _obj({**named, "status": vm_status, "memory": memory, "cluster": link,
                    "os": _obj({"type": s, "kernel": s, "initrd": s, "cmdline": s}),
                    "bios": _obj({"type": _enum(I440FX_SEA_BIOS, Q35_SEA_BIOS)}), "custom_emulated_machine": s,
                    "custom_properties": _obj({"custom_property": _list(_obj({"name": s, "value": s}))}),
                    "actions": actions, "link": _list(rel), "host": link,
                    "disabled_actions": _ref("DisabledActions"),
                    "unmanaged_nics": _obj({"unmanaged_nic": _list(_ref("UnmanagedNic"))})},
                   "host", "disabled_actions", "unmanaged_nics", "custom_emulated_machine"),
        "PciAddress": _obj({"type": _enum("pci"), "domain": s, "bus": s, "slot": s, "function": s}),
        "UnmanagedNic": _obj({"alias": s, "mac": _obj({"address": s}), "address": _ref("PciAddress")}, "address"),
        "Nic": _obj({**named, "interface": s, "mac": _obj({"address": s}), "linked": b, "plugged": b,
                     "vm": link, "actions": actions, "link": _list(rel), "vnic_profile": link,
                     "address": _ref("PciAddress"),
                     "disabled_actions": _ref("DisabledActions")},
                    "vnic_profile", "address", "disabled_actions"),
        "Event": _obj({"id": s, "code": {"type": "integer", "description": "the oVirt audit log type"},
                       "severity": _enum("normal", "warning", "error"), "description": s,
                       "time": {"type": "string", "format": "date-time"}, "user": _obj({"user_name": s}),
                       "vm": link, "nic": _obj({"id": s, "name": s}), "host": _obj({**named})},
                      "vm", "nic", "host"),
        "ActionResult": {**_obj({"status": _enum("complete"), "nic": _ref("Nic"), "vm": _ref("Vm")}, "nic", "vm"),
                         "oneOf": [{"required": ["nic"]}, {"required": ["vm"]}]},
        "Empty": {"type": "object", "description": "an empty object (in XML: <action/>)"},
        "EmptyList": {"type": "object", "description": "an empty collection: {item: []}",
                      "additionalProperties": {"type": "array", "maxItems": 0}},
        "Fault": _obj({"reason": s, "detail": s, "code": {"type": "string", "example": "VM_NOT_FOUND"},
                       "data": {"type": "object"}}, "data"),
        "Token": _obj({"access_token": s, "token_type": _enum("bearer"), "scope": s,
                       "exp": {"type": "string", "description": "expiry, milliseconds since the epoch"}}),
        "OAuthError": _obj({"error": s, "error_description": s}),
        "TokenRequest": _in({"grant_type": _enum("password"), "scope": {**text, "example": "ovirt-app-api"},
                             "username": {**text, "example": "admin@internal"}, "password": text},
                            "grant_type", "username", "password"),
        "DataCenterInput": _xml("data_center", _in({"name": name, "description": text}, "name")),
        "ClusterInput": _xml("cluster", _in({"name": name, "description": text, "version": _ref("VersionInput"),
                                             "data_center": _ref("IdRef")}, "name")),
        "VersionInput": _in({"major": version, "minor": version}, "major", "minor"),
        "HostInput": _xml("host", _in({
            "name": name, "address": {"type": "string", "maxLength": 253,
                                      "pattern": f"^{limits.HOST_ADDRESS_PATTERN}$",
                                      "description": limits.HOST_ADDRESS_RULE},
            "port": _whole(limits.PORT_MIN, limits.PORT_MAX, default=54321), "cluster": _ref("IdRef")},
            "name", "address", "cluster")),
        "NetworkInput": _xml("network", _in({
            "name": {**name, "description": "without a bridge, also the bridge's name: " + DEVICE_NAME_RULE},
            "bridge": {"type": "string", "pattern": f"^{DEVICE_NAME_PATTERN}$",
                       "description": "default: the network's name, as in VDSM"},
            "data_center": _ref("IdRef"), "cluster": _ref("IdRef")}, "name"),
            anyOf=[{"required": ["data_center"]}, {"required": ["cluster"]}]),
        "VmInput": _xml("vm", _in({
            "name": {**name, "pattern": f"^{limits.VM_NAME_PATTERN}$",
                     "description": f"{limits.NAME_RULE}, printable, without '/' (the host's rule)"},
            "cluster": _ref("IdRef"),
            "os": _in({"type": {**_enum(*OS_TYPES), "default": "other"}, "kernel": image, "initrd": image,
                       "cmdline": text}),
            "bios": _in({"type": {**_enum(*BIOS_TYPES), "default": CLUSTER_DEFAULT,
                                  "description": f"the chipset: {I440FX_SEA_BIOS} or {Q35_SEA_BIOS} (SeaBIOS); "
                                  f"{Q35_OVMF} and {Q35_SECURE_BOOT} are refused (no UEFI firmware on the hosts); "
                                  f"{CLUSTER_DEFAULT}: that of custom_emulated_machine, else {I440FX_SEA_BIOS}"}}),
            "custom_emulated_machine": {"type": "string", "pattern": f"^({MACHINE_PATTERN})?$",
                                        "description": f"a QEMU machine of the bios type's chipset: {MACHINE_RULE}"},
            "memory": _whole(limits.MEMORY_MIN, limits.MEMORY_MAX, "int64", default=128 * 2**20, description="bytes"),
            "custom_properties": _in({"custom_property": _list(_in({"name": text, "value": {**text, "nullable": True}},
                                                                 "name"))})},
            "name", "cluster")),
        "StartVmInput": _xml("action", _in({"vm": _in({"placement_policy": _in({"hosts": _in({
            "host": _list(_ref("IdRef"))})})})})),
        "NicInput": _xml("nic", _in({
            "name": name, "interface": {**_enum(*MODELS), "default": "virtio"},
            "mac": _in({"address": {"type": "string", "pattern": f"^{limits.MAC_PATTERN}$",
                                    "description": "a unicast MAC address"}}, "address"),
            "vnic_profile": _ref("IdRef"), "linked": flag, "plugged": flag})),
        "NewNicInput": _xml("nic", {"allOf": [_ref("NicInput")], "required": ["name", "vnic_profile"]}),
        "VnicProfileUpdate": _xml("vnic_profile", _in({
            "name": name, "description": text, "port_mirroring": flag,
            "pass_through": _in({"mode": _enum("enabled", "disabled")}, "mode"),
            "qos": {**_in({"id": {**s, "xml": {"attribute": True}}}),
                    "description": "a QoS of the network's data center; {} (<qos/>) takes the profile's QoS off"},
            "network": {**_ref("IdRef"), "description": "the profile's own: a network cannot change"}})),
        "VnicProfileInput": _xml("vnic_profile", {"allOf": [_ref("VnicProfileUpdate")],
                                                  "required": ["name", "network"]}),
        "NetworkVnicProfileInput": _xml("vnic_profile", {"allOf": [_ref("VnicProfileUpdate")], "required": ["name"]}),
        "QosUpdate": _xml("qos", _in({
            "name": name, "description": text,
            "type": {**_enum("network"), "description": "only network QoS (vNIC profiles') is kept here"},
            **{rate: _whole(1, limit, description=f"{unit}; give a direction's three together")
               for rate, limit, unit in _QOS_LIMITS}})),
        "QosInput": _xml("qos", {"allOf": [_ref("QosUpdate")], "required": ["name", "type"]}),
        "MacPoolUpdate": _xml("mac_pool", _in({
            "name": name, "description": text,
            "allow_duplicates": _only(False, "false only: duplicate MACs are not supported"),
            "default_pool": _only(True, "true only: the one pool is the default one"),
            "ranges": {**_in({"range": {**_list(_in({"from": mac, "to": mac}, "from", "to")), "minItems": 1,
                                        "maxItems": limits.MAC_POOL_RANGES_MAX}}, "range"),
                       "description": "replaces the pool's ranges, taken in this order; each from <= to, within "
                       f"one first octet (unicast), at most {limits.MAC_RANGE_SIZE_MAX} MACs, none overlapping"}})),
        "DiskAttachmentInput": _xml("disk_attachment", _in({
            "disk": _in({"name": {**image, "minLength": 1}, "format": {**_enum(*DISK_FORMATS),
                                                                       "description": "raw, or cow (qcow2)"}},
                        "name", "format"),
            "interface": {**_enum(*DISK_INTERFACES), "default": "virtio"}, "bootable": flag, "read_only": flag,
            "active": {**flag, "description": "true (or left out): no disk hot plug here"}}, "disk")),
    }  # fmt: skip
    for item, key in (("DataCenter", "data_center"), ("Cluster", "cluster"), ("Host", "host"),
                      ("Network", "network"), ("Vm", "vm"), ("VnicProfile", "vnic_profile"), ("Nic", "nic"),
                      ("Event", "event"), ("Qos", "qos"), ("DiskAttachment", "disk_attachment"),
                      ("MacPool", "mac_pool")):  # fmt: skip
        schemas[f"{item}List"] = _obj({key: _list(_ref(item))})
    return schemas


def _operation(method: str, path: str, name: str) -> Json:
    if name not in _OPS:
        raise LookupError(f"{method} {path}: handler {name} is not described in engine/api/openapi.py")
    summary, status, answer, body, faults = _OPS[name]
    what = {200: "OK", 201: "Created"}[status]
    op: Json = {
        "operationId": name,
        "summary": summary,
        "tags": ["nics" if "/nics" in path else path.split("/")[1] if path else "api"],
        "responses": {str(status): _both(_ref(answer), what)},
    }
    params = [{"name": p, "in": "path", "required": True, "description": _PATH_PARAMS.get(p, p),
               "schema": {"type": "string", "pattern": f"^{limits.TEXT_PATTERN}$"}}
               for p in re.findall(r"\{(\w+)\}", path)]  # fmt: skip
    params += [{"name": q, "in": "query", "description": d, "schema": sch} for q, sch, d in _QUERY.get(name, [])]
    if params:
        op["parameters"] = params
    if body:
        content = {"application/json": {"schema": _ref(body)}, "application/xml": {"schema": _ref(body)}}
        # A start needs no body, nor does an update (an empty one changes nothing, as {} does).
        op["requestBody"] = {"required": body not in UPDATES, "content": content}
    for code in sorted({*faults, 400, 401, *(() if method == "GET" else (403,))}):
        op["responses"][str(code)] = {"$ref": f"#/components/responses/Fault{code}"}
    return op


def document(prefix: str) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of the API under ``prefix`` ('/ovirt-engine/api' or '/api')."""
    paths: Json = {}
    for method, path, handler in routes.ROUTES:
        paths.setdefault(prefix + path, {})[method.lower()] = _operation(method, path, handler.__name__)
    paths[prefix + OPENAPI] = {"get": {
        "operationId": "openapi", "summary": "This document (no token needed)", "tags": ["api"], "security": [],
        "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.0 document")}}}  # fmt: skip
    form = {"schema": _ref("TokenRequest")}
    paths[TOKEN_PATH] = {
        "post": {
            "operationId": "token",
            "summary": "Log in (oVirt SSO): a bearer token for the other operations",
            "tags": ["auth"],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": form, "application/json": form},
            },
            "responses": {
                "200": _json(_ref("Token"), "The token"),
                "400": _json(_ref("OAuthError"), "grant_type is not password, or the body cannot be read"),
                "401": _json(_ref("OAuthError"), "Wrong username or password"),
                "429": {
                    **_json(
                        _ref("OAuthError"),
                        "Too many failed logins for this user or address: try again after Retry-After seconds",
                    ),
                    "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
                },
            },
        }
    }
    text = {"type": "string", "pattern": f"^{limits.TEXT_PATTERN}$"}
    logout = {
        "schema": _in({"token": {**text, "minLength": 1}, "scope": {**text, "example": "ovirt-app-api"}}, "token")
    }
    paths[LOGOUT_PATH] = {"post": {
        "operationId": "logout", "summary": "Log out (oVirt SSO): revoke a token", "tags": ["auth"], "security": [],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": logout,
                                                      "application/json": logout}},
        "responses": {"200": _json(_ref("Empty"), "Revoked (or already unknown)"),
                      "400": _json(_ref("OAuthError"), "No token given")}}}  # fmt: skip
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hotplug-nic engine",
            "version": "4.7",
            "description": "Hot-plug NICs into VMs: oVirt's REST API v4. Answers are XML as oVirt's (a collection "
            "is its plural element, id/href/rel are attributes) unless the client sends 'Accept: application/json'; "
            "bodies are read as XML or JSON by their Content-Type. The schemas describe the JSON; the XML carries "
            f"the same data. Log in at {TOKEN_PATH}, then send 'Authorization: Bearer <token>'; "
            f"log out at {LOGOUT_PATH}.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "responses": {f"Fault{code}": _both(_ref("Fault"), text) for code, text in _FAULTS.items()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


async def openapi(request: web.Request) -> web.Response:
    """GET {prefix}/openapi.json: the document for the prefix the request came by."""
    return web.json_response(document(prefix_of(request.path)))
