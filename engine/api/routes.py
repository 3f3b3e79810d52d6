"""HTTP handlers: parse, call one service or view, render.  Errors become faults in middleware.

Every route is served under both prefixes of ``engine/api/paths.py``.  Reads go through the
read side (``engine/services/views.py``), changes through one use case each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from engine.api import representation as rep
from engine.api.keys import CALLER, CONTEXT
from engine.api.paths import PREFIXES, prefix_of
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.services import inventory, nics, views, vms
from engine.services.context import Context
from engine.services.views import Caller

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _prefix(request: web.Request) -> str:
    return prefix_of(request.path)


def _ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]


def _caller(request: web.Request) -> Caller:
    caller: Caller = request[CALLER]
    return caller


def _user(request: web.Request) -> str:
    return _caller(request).user


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise EngineError(errors.INVALID, "the body must be a JSON object")
    return body


def _ok(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def api_root(request: web.Request) -> web.Response:
    return _ok(rep.api_root_json(_prefix(request), _caller(request)))


# -- inventory --------------------------------------------------------------------------------
async def list_clusters(request: web.Request) -> web.Response:
    found = await views.clusters(_ctx(request))
    return _ok(rep.collection("cluster", [rep.cluster_json(_prefix(request), c) for c in found]))


async def get_cluster(request: web.Request) -> web.Response:
    return _ok(rep.cluster_json(_prefix(request), await views.cluster(_ctx(request), request.match_info["id"])))


async def list_cluster_networks(request: web.Request) -> web.Response:
    found = await views.cluster_networks(_ctx(request), request.match_info["id"])
    return _ok(rep.collection("network", [rep.network_json(_prefix(request), n) for n in found]))


async def add_cluster(request: web.Request) -> web.Response:
    body = await _body(request)
    cluster = await inventory.add_cluster(
        _ctx(request), str(body.get("name", "")), rep.version_from_body(body), str(body.get("description", ""))
    )
    return _ok(rep.cluster_json(_prefix(request), cluster), 201)


async def list_hosts(request: web.Request) -> web.Response:
    found = await views.hosts(_ctx(request))
    return _ok(rep.collection("host", [rep.host_json(_prefix(request), h) for h in found]))


async def get_host(request: web.Request) -> web.Response:
    return _ok(rep.host_json(_prefix(request), await views.host(_ctx(request), request.match_info["id"])))


async def add_host(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        port = int(body.get("port", 54321))
    except (TypeError, ValueError):
        raise EngineError(errors.INVALID, f"port must be a number, got {body.get('port')!r}") from None
    cluster_id = rep.ref_id(body, "cluster") or ""
    host = await inventory.add_host(
        _ctx(request), str(body.get("name", "")), cluster_id, str(body.get("address", "")), port
    )
    return _ok(rep.host_json(_prefix(request), host), 201)


async def list_networks(request: web.Request) -> web.Response:
    found = await views.networks(_ctx(request))
    return _ok(rep.collection("network", [rep.network_json(_prefix(request), n) for n in found]))


async def get_network(request: web.Request) -> web.Response:
    return _ok(rep.network_json(_prefix(request), await views.network(_ctx(request), request.match_info["id"])))


async def add_network(request: web.Request) -> web.Response:
    body = await _body(request)
    cluster_id = rep.ref_id(body, "cluster") or ""
    network, _ = await inventory.add_network(
        _ctx(request), str(body.get("name", "")), cluster_id, str(body.get("bridge") or "")
    )
    return _ok(rep.network_json(_prefix(request), network), 201)


async def list_profiles(request: web.Request) -> web.Response:
    found = await views.profiles(_ctx(request))
    return _ok(rep.collection("vnic_profile", [rep.profile_json(_prefix(request), p) for p in found]))


async def get_profile(request: web.Request) -> web.Response:
    return _ok(rep.profile_json(_prefix(request), await views.profile(_ctx(request), request.match_info["id"])))


async def list_events(request: web.Request) -> web.Response:
    entries = await views.events(_ctx(request), request.query.get("vm"))
    return _ok(rep.collection("event", [rep.event_json(_prefix(request), e) for e in entries]))


# -- VMs --------------------------------------------------------------------------------------
async def list_vms(request: web.Request) -> web.Response:
    found = await views.vms(_ctx(request), _caller(request), rep.name_search(request.query.get("search", "")))
    return _ok(rep.collection("vm", [rep.vm_json(_prefix(request), v.vm, v.disabled) for v in found]))


async def get_vm(request: web.Request) -> web.Response:
    found = await views.vm(_ctx(request), _caller(request), request.match_info["id"])
    return _ok(rep.vm_json(_prefix(request), found.vm, found.disabled))


async def add_vm(request: web.Request) -> web.Response:
    vm = await vms.add_vm(_ctx(request), _user(request), rep.vm_from_body(await _body(request)))
    return _ok(rep.vm_json(_prefix(request), vm), 201)


async def remove_vm(request: web.Request) -> web.Response:
    await vms.remove_vm(_ctx(request), _user(request), request.match_info["id"])
    return _ok({})


async def start_vm(request: web.Request) -> web.Response:
    body = await _body(request)
    host_id = rep.placement_host(body)
    vm = await vms.run_vm(_ctx(request), _user(request), request.match_info["id"], host_id)
    return _ok({"status": "complete", "vm": rep.vm_json(_prefix(request), vm)})


async def stop_vm(request: web.Request) -> web.Response:
    vm = await vms.stop_vm(_ctx(request), _user(request), request.match_info["id"])
    return _ok({"status": "complete", "vm": rep.vm_json(_prefix(request), vm)})


# -- NICs -------------------------------------------------------------------------------------
async def list_nics(request: web.Request) -> web.Response:
    found = await views.nics(_ctx(request), _caller(request), request.match_info["vm"])
    return _ok(rep.collection("nic", [rep.nic_json(_prefix(request), v.nic, v.disabled) for v in found]))


async def get_nic(request: web.Request) -> web.Response:
    m = request.match_info
    (found,) = await views.nics(_ctx(request), _caller(request), m["vm"], m["nic"])
    return _ok(rep.nic_json(_prefix(request), found.nic, found.disabled))


async def add_nic(request: web.Request) -> web.Response:
    fields, plugged = rep.nic_fields(await _body(request))
    activate = plugged if plugged is not None else request.query.get("activate", "true").lower() != "false"
    nic = await nics.add_nic(_ctx(request), _user(request), request.match_info["vm"], fields, activate)
    return _ok(rep.nic_json(_prefix(request), nic), 201)


async def update_nic(request: web.Request) -> web.Response:
    fields, plugged = rep.nic_fields(await _body(request))
    m = request.match_info
    nic = await nics.update_nic(_ctx(request), _user(request), m["vm"], m["nic"], fields, plugged)
    return _ok(rep.nic_json(_prefix(request), nic))


async def remove_nic(request: web.Request) -> web.Response:
    await nics.remove_nic(_ctx(request), _user(request), request.match_info["vm"], request.match_info["nic"])
    return _ok({})


def _plug_action(plug: bool) -> Handler:
    async def action(request: web.Request) -> web.Response:
        m = request.match_info
        nic = await nics.set_plugged(_ctx(request), _user(request), m["vm"], m["nic"], plug)
        return _ok({"status": "complete", "nic": rep.nic_json(_prefix(request), nic)})

    action.__name__ = "activate_nic" if plug else "deactivate_nic"
    return action


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "", api_root),
    ("GET", "/clusters", list_clusters), ("POST", "/clusters", add_cluster), ("GET", "/clusters/{id}", get_cluster),
    ("GET", "/clusters/{id}/networks", list_cluster_networks),
    ("GET", "/hosts", list_hosts), ("POST", "/hosts", add_host), ("GET", "/hosts/{id}", get_host),
    ("GET", "/networks", list_networks), ("POST", "/networks", add_network), ("GET", "/networks/{id}", get_network),
    ("GET", "/vnicprofiles", list_profiles), ("GET", "/vnicprofiles/{id}", get_profile),
    ("GET", "/events", list_events),
    ("GET", "/vms", list_vms), ("POST", "/vms", add_vm),
    ("GET", "/vms/{id}", get_vm), ("DELETE", "/vms/{id}", remove_vm),
    ("POST", "/vms/{id}/start", start_vm), ("POST", "/vms/{id}/stop", stop_vm),
    ("GET", "/vms/{vm}/nics", list_nics), ("POST", "/vms/{vm}/nics", add_nic),
    ("GET", "/vms/{vm}/nics/{nic}", get_nic), ("PUT", "/vms/{vm}/nics/{nic}", update_nic),
    ("DELETE", "/vms/{vm}/nics/{nic}", remove_nic),
    ("POST", "/vms/{vm}/nics/{nic}/activate", _plug_action(True)),
    ("POST", "/vms/{vm}/nics/{nic}/deactivate", _plug_action(False)),
]  # fmt: skip


def add_routes(app: web.Application) -> None:
    for prefix in PREFIXES:
        for method, path, handler in ROUTES:
            app.router.add_route(method, prefix + path, handler)
