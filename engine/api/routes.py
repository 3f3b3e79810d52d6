"""HTTP handlers: parse, call one service or view, answer a :class:`Reply`.

Every route is served under both prefixes of ``engine/api/paths.py``.  Reads go through the
read side (``engine/services/views.py``), changes through one use case each.  A handler never
sees the wire format: ``formats.read_body`` reads XML or JSON, and ``add_routes`` renders each
Reply as the client asked (XML by default, as oVirt).  Errors become faults in middleware.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.api import representation as rep
from engine.api.formats import Reply, read_body, refuse_bad_text_in_request, render
from engine.api.keys import CALLER, CONTEXT
from engine.api.paths import PREFIXES, prefix_of
from engine.services import disks, inventory, macpools, nics, profiles, views, vms
from engine.services.context import Context
from engine.services.views import Caller

Handler = Callable[[web.Request], Awaitable[Reply]]


def _prefix(request: web.Request) -> str:
    return prefix_of(request.path)


def _ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]


def _caller(request: web.Request) -> Caller:
    caller: Caller = request[CALLER]
    return caller


def _user(request: web.Request) -> str:
    return _caller(request).user


def _search(request: web.Request) -> views.ListQuery:
    return views.ListQuery(request.query.get("search"), request.query.get("max"))


async def api_root(request: web.Request) -> Reply:
    return Reply("api", rep.api_root_json(_prefix(request), _caller(request)))


# -- data centers, clusters, hosts, networks, profiles -----------------------------------------
async def list_data_centers(request: web.Request) -> Reply:
    found = await views.data_centers(_ctx(request), _search(request))
    return rep.collection("data_center", [rep.data_center_json(_prefix(request), d) for d in found])


async def get_data_center(request: web.Request) -> Reply:
    found = await views.data_center(_ctx(request), request.match_info["id"])
    return Reply("data_center", rep.data_center_json(_prefix(request), found))


async def add_data_center(request: web.Request) -> Reply:
    body = await read_body(request)
    dc = await inventory.add_data_center(_ctx(request), rep.text(body, "name"), rep.text(body, "description"))
    return Reply("data_center", rep.data_center_json(_prefix(request), dc), 201)


async def list_data_center_clusters(request: web.Request) -> Reply:
    found = await views.data_center_clusters(_ctx(request), request.match_info["id"])
    return rep.collection("cluster", [rep.cluster_json(_prefix(request), c) for c in found])


async def list_data_center_networks(request: web.Request) -> Reply:
    found = await views.data_center_networks(_ctx(request), request.match_info["id"])
    return rep.collection("network", [rep.network_json(_prefix(request), n) for n in found])


async def list_clusters(request: web.Request) -> Reply:
    found = await views.clusters(_ctx(request), _search(request))
    return rep.collection("cluster", [rep.cluster_json(_prefix(request), c) for c in found])


async def get_cluster(request: web.Request) -> Reply:
    found = await views.cluster(_ctx(request), request.match_info["id"])
    return Reply("cluster", rep.cluster_json(_prefix(request), found))


async def add_cluster(request: web.Request) -> Reply:
    body = await read_body(request)
    cluster = await inventory.add_cluster(
        _ctx(request), rep.text(body, "name"), rep.version_from_body(body), rep.text(body, "description"),
        rep.ref_id(body, "data_center"),
    )  # fmt: skip
    return Reply("cluster", rep.cluster_json(_prefix(request), cluster), 201)


async def list_cluster_networks(request: web.Request) -> Reply:
    found = await views.cluster_networks(_ctx(request), request.match_info["id"])
    return rep.collection("network", [rep.network_json(_prefix(request), n) for n in found])


async def attach_cluster_network(request: web.Request) -> Reply:
    body = await read_body(request)
    network = await inventory.attach_network(_ctx(request), request.match_info["id"], rep.required_id(body))
    return Reply("network", rep.network_json(_prefix(request), network), 201)


async def list_hosts(request: web.Request) -> Reply:
    found = await views.hosts(_ctx(request), _search(request))
    return rep.collection("host", [rep.host_json(_prefix(request), h) for h in found])


async def get_host(request: web.Request) -> Reply:
    return Reply("host", rep.host_json(_prefix(request), await views.host(_ctx(request), request.match_info["id"])))


async def add_host(request: web.Request) -> Reply:
    body = await read_body(request)
    host = await inventory.add_host(
        _ctx(request), rep.text(body, "name"), rep.ref_id(body, "cluster") or "", rep.text(body, "address"),
        rep.port(body),
    )  # fmt: skip
    return Reply("host", rep.host_json(_prefix(request), host), 201)


async def list_networks(request: web.Request) -> Reply:
    found = await views.networks(_ctx(request), _search(request))
    return rep.collection("network", [rep.network_json(_prefix(request), n) for n in found])


async def get_network(request: web.Request) -> Reply:
    found = await views.network(_ctx(request), request.match_info["id"])
    return Reply("network", rep.network_json(_prefix(request), found))


async def add_network(request: web.Request) -> Reply:
    body = await read_body(request)
    network, _ = await inventory.add_network(
        _ctx(request), rep.text(body, "name"), data_center_id=rep.ref_id(body, "data_center"),
        cluster_id=rep.ref_id(body, "cluster"), bridge=rep.text(body, "bridge"),
    )  # fmt: skip
    return Reply("network", rep.network_json(_prefix(request), network), 201)


async def list_network_profiles(request: web.Request) -> Reply:
    found = await views.profiles(_ctx(request), _search(request), network_id=request.match_info["id"])
    return rep.collection("vnic_profile", [rep.profile_json(_prefix(request), p) for p in found])


async def add_network_profile(request: web.Request) -> Reply:
    fields = rep.profile_fields(await read_body(request), network_id=request.match_info["id"])
    profile = await profiles.add_profile(_ctx(request), _user(request), fields)
    return Reply("vnic_profile", rep.profile_json(_prefix(request), profile), 201)


async def get_network_profile(request: web.Request) -> Reply:
    m = request.match_info
    found = await views.profile(_ctx(request), m["profile"], network_id=m["id"])
    return Reply("vnic_profile", rep.profile_json(_prefix(request), found))


async def remove_network_profile(request: web.Request) -> Reply:
    m = request.match_info
    await profiles.remove_profile(_ctx(request), _user(request), m["profile"], network_id=m["id"])
    return rep.removed()


async def list_profiles(request: web.Request) -> Reply:
    found = await views.profiles(_ctx(request), _search(request))
    return rep.collection("vnic_profile", [rep.profile_json(_prefix(request), p) for p in found])


async def add_profile(request: web.Request) -> Reply:
    fields = rep.profile_fields(await read_body(request))
    profile = await profiles.add_profile(_ctx(request), _user(request), fields)
    return Reply("vnic_profile", rep.profile_json(_prefix(request), profile), 201)


async def get_profile(request: web.Request) -> Reply:
    found = await views.profile(_ctx(request), request.match_info["id"])
    return Reply("vnic_profile", rep.profile_json(_prefix(request), found))


async def update_profile(request: web.Request) -> Reply:
    fields = rep.profile_fields(await read_body(request))
    profile = await profiles.update_profile(_ctx(request), _user(request), request.match_info["id"], fields)
    return Reply("vnic_profile", rep.profile_json(_prefix(request), profile))


async def remove_profile(request: web.Request) -> Reply:
    await profiles.remove_profile(_ctx(request), _user(request), request.match_info["id"])
    return rep.removed()


async def list_qoss(request: web.Request) -> Reply:
    found = await views.qoss(_ctx(request), request.match_info["id"])
    return rep.collection("qos", [rep.qos_json(_prefix(request), q) for q in found])


async def add_qos(request: web.Request) -> Reply:
    fields = rep.qos_fields(await read_body(request))
    qos = await profiles.add_qos(_ctx(request), _user(request), request.match_info["id"], fields)
    return Reply("qos", rep.qos_json(_prefix(request), qos), 201)


async def get_qos(request: web.Request) -> Reply:
    m = request.match_info
    return Reply("qos", rep.qos_json(_prefix(request), await views.qos(_ctx(request), m["id"], m["qos"])))


async def update_qos(request: web.Request) -> Reply:
    fields, m = rep.qos_fields(await read_body(request)), request.match_info
    qos = await profiles.update_qos(_ctx(request), _user(request), m["id"], m["qos"], fields)
    return Reply("qos", rep.qos_json(_prefix(request), qos))


async def remove_qos(request: web.Request) -> Reply:
    m = request.match_info
    await profiles.remove_qos(_ctx(request), _user(request), m["id"], m["qos"])
    return rep.removed()


async def list_mac_pools(request: web.Request) -> Reply:
    found = await views.mac_pools(_ctx(request))
    return rep.collection("mac_pool", [rep.mac_pool_json(_prefix(request), p) for p in found])


async def get_mac_pool(request: web.Request) -> Reply:
    found = await views.mac_pool(_ctx(request), request.match_info["id"])
    return Reply("mac_pool", rep.mac_pool_json(_prefix(request), found))


async def update_mac_pool(request: web.Request) -> Reply:
    fields = rep.mac_pool_fields(await read_body(request))
    pool = await macpools.update_mac_pool(_ctx(request), _user(request), request.match_info["id"], fields)
    return Reply("mac_pool", rep.mac_pool_json(_prefix(request), pool))


async def list_events(request: web.Request) -> Reply:
    entries = await views.events(_ctx(request), request.query.get("vm"))
    return rep.collection("event", [rep.event_json(_prefix(request), e) for e in entries])


# -- VMs --------------------------------------------------------------------------------------
async def list_vms(request: web.Request) -> Reply:
    found = await views.vms(_ctx(request), _caller(request), _search(request))
    return rep.collection("vm", [rep.vm_json(_prefix(request), v.vm, v.disabled, v.unmanaged) for v in found])


async def get_vm(request: web.Request) -> Reply:
    found = await views.vm(_ctx(request), _caller(request), request.match_info["id"])
    return Reply("vm", rep.vm_json(_prefix(request), found.vm, found.disabled, found.unmanaged))


async def add_vm(request: web.Request) -> Reply:
    vm = await vms.add_vm(_ctx(request), _user(request), rep.vm_from_body(await read_body(request)))
    return Reply("vm", rep.vm_json(_prefix(request), vm), 201)


async def remove_vm(request: web.Request) -> Reply:
    await vms.remove_vm(_ctx(request), _user(request), request.match_info["id"])
    return rep.removed()


async def start_vm(request: web.Request) -> Reply:
    host_id = rep.placement_host(await read_body(request))
    vm = await vms.run_vm(_ctx(request), _user(request), request.match_info["id"], host_id)
    return rep.action_done("vm", rep.vm_json(_prefix(request), vm))


async def stop_vm(request: web.Request) -> Reply:
    vm = await vms.stop_vm(_ctx(request), _user(request), request.match_info["id"])
    return rep.action_done("vm", rep.vm_json(_prefix(request), vm))


# -- NICs -------------------------------------------------------------------------------------
async def list_nics(request: web.Request) -> Reply:
    found = await views.nics(_ctx(request), _caller(request), request.match_info["vm"])
    return rep.collection("nic", [rep.nic_json(_prefix(request), v.nic, v.disabled) for v in found])


async def get_nic(request: web.Request) -> Reply:
    m = request.match_info
    (found,) = await views.nics(_ctx(request), _caller(request), m["vm"], m["nic"])
    return Reply("nic", rep.nic_json(_prefix(request), found.nic, found.disabled))


def _nic_extras(segment: str) -> Handler:
    """A NIC's network filter parameters, reported devices or statistics: none are kept here, but
    the NIC links to them as oVirt's does, so a client that follows every link gets an empty
    collection rather than an error."""
    item = rep.NIC_SUBCOLLECTIONS[segment]

    async def extras(request: web.Request) -> Reply:
        m = request.match_info
        await views.nics(_ctx(request), _caller(request), m["vm"], m["nic"])  # 404 for a missing VM or NIC
        return rep.collection(item, [])

    extras.__name__ = f"list_nic_{rep.PLURALS[item]}"
    return extras


async def list_disk_attachments(request: web.Request) -> Reply:
    found = await views.disks(_ctx(request), request.match_info["id"])
    return rep.collection("disk_attachment", [rep.disk_attachment_json(_prefix(request), d) for d in found])


async def get_disk_attachment(request: web.Request) -> Reply:
    m = request.match_info
    (found,) = await views.disks(_ctx(request), m["id"], m["disk"])
    return Reply("disk_attachment", rep.disk_attachment_json(_prefix(request), found))


async def add_disk_attachment(request: web.Request) -> Reply:
    fields = rep.disk_fields(await read_body(request))
    disk = await disks.attach_disk(_ctx(request), _user(request), request.match_info["id"], fields)
    return Reply("disk_attachment", rep.disk_attachment_json(_prefix(request), disk), 201)


async def remove_disk_attachment(request: web.Request) -> Reply:
    m = request.match_info
    await disks.detach_disk(_ctx(request), _user(request), m["id"], m["disk"])
    return rep.removed()


async def add_nic(request: web.Request) -> Reply:
    fields, plugged = rep.nic_fields(await read_body(request))
    activate = rep.flag(request.query.get("activate", "true"), "activate")  # read even when plugged wins
    activate = plugged if plugged is not None else activate
    nic = await nics.add_nic(_ctx(request), _user(request), request.match_info["vm"], fields, activate)
    return Reply("nic", rep.nic_json(_prefix(request), nic), 201)


async def update_nic(request: web.Request) -> Reply:
    fields, plugged = rep.nic_fields(await read_body(request))
    m = request.match_info
    nic = await nics.update_nic(_ctx(request), _user(request), m["vm"], m["nic"], fields, plugged)
    return Reply("nic", rep.nic_json(_prefix(request), nic))


async def remove_nic(request: web.Request) -> Reply:
    await nics.remove_nic(_ctx(request), _user(request), request.match_info["vm"], request.match_info["nic"])
    return rep.removed()


def _plug_action(plug: bool) -> Handler:
    async def action(request: web.Request) -> Reply:
        await read_body(request)  # <action/>, perhaps with <async>: a well-formed body is all it needs
        m = request.match_info
        nic = await nics.set_plugged(_ctx(request), _user(request), m["vm"], m["nic"], plug)
        return rep.action_done("nic", rep.nic_json(_prefix(request), nic))

    action.__name__ = "activate_nic" if plug else "deactivate_nic"
    return action


_NIC = "/vms/{vm}/nics/{nic}"
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "", api_root),
    ("GET", "/datacenters", list_data_centers), ("POST", "/datacenters", add_data_center),
    ("GET", "/datacenters/{id}", get_data_center),
    ("GET", "/datacenters/{id}/clusters", list_data_center_clusters),
    ("GET", "/datacenters/{id}/networks", list_data_center_networks),
    ("GET", "/clusters", list_clusters), ("POST", "/clusters", add_cluster), ("GET", "/clusters/{id}", get_cluster),
    ("GET", "/clusters/{id}/networks", list_cluster_networks),
    ("POST", "/clusters/{id}/networks", attach_cluster_network),
    ("GET", "/hosts", list_hosts), ("POST", "/hosts", add_host), ("GET", "/hosts/{id}", get_host),
    ("GET", "/networks", list_networks), ("POST", "/networks", add_network), ("GET", "/networks/{id}", get_network),
    ("GET", "/datacenters/{id}/qoss", list_qoss), ("POST", "/datacenters/{id}/qoss", add_qos),
    ("GET", "/datacenters/{id}/qoss/{qos}", get_qos), ("PUT", "/datacenters/{id}/qoss/{qos}", update_qos),
    ("DELETE", "/datacenters/{id}/qoss/{qos}", remove_qos),
    ("GET", "/networks/{id}/vnicprofiles", list_network_profiles),
    ("POST", "/networks/{id}/vnicprofiles", add_network_profile),
    ("GET", "/networks/{id}/vnicprofiles/{profile}", get_network_profile),
    ("DELETE", "/networks/{id}/vnicprofiles/{profile}", remove_network_profile),
    ("GET", "/vnicprofiles", list_profiles), ("POST", "/vnicprofiles", add_profile),
    ("GET", "/vnicprofiles/{id}", get_profile), ("PUT", "/vnicprofiles/{id}", update_profile),
    ("DELETE", "/vnicprofiles/{id}", remove_profile),
    ("GET", "/macpools", list_mac_pools), ("GET", "/macpools/{id}", get_mac_pool),
    ("PUT", "/macpools/{id}", update_mac_pool),
    ("GET", "/events", list_events),
    ("GET", "/vms", list_vms), ("POST", "/vms", add_vm),
    ("GET", "/vms/{id}", get_vm), ("DELETE", "/vms/{id}", remove_vm),
    ("POST", "/vms/{id}/start", start_vm), ("POST", "/vms/{id}/stop", stop_vm),
    ("GET", "/vms/{id}/diskattachments", list_disk_attachments),
    ("POST", "/vms/{id}/diskattachments", add_disk_attachment),
    ("GET", "/vms/{id}/diskattachments/{disk}", get_disk_attachment),
    ("DELETE", "/vms/{id}/diskattachments/{disk}", remove_disk_attachment),
    ("GET", "/vms/{vm}/nics", list_nics), ("POST", "/vms/{vm}/nics", add_nic),
    ("GET", _NIC, get_nic), ("PUT", _NIC, update_nic), ("DELETE", _NIC, remove_nic),
    ("POST", f"{_NIC}/activate", _plug_action(True)), ("POST", f"{_NIC}/deactivate", _plug_action(False)),
    *(("GET", f"{_NIC}/{segment}", _nic_extras(segment)) for segment in rep.NIC_SUBCOLLECTIONS),
]  # fmt: skip


def _rendered(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @functools.wraps(handler)
    async def respond(request: web.Request) -> web.StreamResponse:
        refuse_bad_text_in_request(request)
        return render(request, await handler(request))

    return respond


def add_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        for method, path, handler in ROUTES:
            app.router.add_route(method, prefix + path, _rendered(handler))
