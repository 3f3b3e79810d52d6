"""HTTP handlers: parse, call one service, render.  Errors are turned into faults by middleware.

Every route is served under ``/ovirt-engine/api`` (oVirt's path) and ``/api`` (the seed's).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from engine.api import representation as rep
from engine.api.keys import CONTEXT
from engine.domain import errors, rules
from engine.domain.errors import EngineError
from engine.domain.model import Cluster, Nic, Vm
from engine.services import inventory, nics, vms
from engine.services.context import Context

PREFIXES = ("/ovirt-engine/api", "/api")


def _prefix(request: web.Request) -> str:
    return PREFIXES[0] if request.path.startswith(PREFIXES[0]) else PREFIXES[1]


def _ctx(request: web.Request) -> Context:
    return request.app[CONTEXT]


def _user(request: web.Request) -> str:
    return str(request.get("user", "anonymous"))


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
    p = _prefix(request)
    names = ("clusters", "hosts", "networks", "vnicprofiles", "vms", "events")
    product = {"name": "hotplug-nic engine", "vendor": "hotplug-nic", "version": {"major": 4, "minor": 7}}
    user = {"user_name": _user(request), "role": request.get("role", "")}
    return _ok({"product_info": product, "authenticated_user": user,
                "link": [{"rel": n, "href": f"{p}/{n}"} for n in names]})  # fmt: skip


# -- inventory --------------------------------------------------------------------------------
async def list_clusters(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        found = await repo.clusters()
    return _ok(rep.collection("cluster", [rep.cluster_json(_prefix(request), c) for c in found]))


async def get_cluster(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        return _ok(rep.cluster_json(_prefix(request), await repo.cluster(request.match_info["id"])))


async def add_cluster(request: web.Request) -> web.Response:
    body = await _body(request)
    cluster = await inventory.add_cluster(
        _ctx(request), str(body.get("name", "")), rep.version_from_body(body), str(body.get("description", ""))
    )
    return _ok(rep.cluster_json(_prefix(request), cluster), 201)


async def list_hosts(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        found = await repo.hosts()
    return _ok(rep.collection("host", [rep.host_json(_prefix(request), h) for h in found]))


async def get_host(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        return _ok(rep.host_json(_prefix(request), await repo.host(request.match_info["id"])))


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
    async with _ctx(request).transaction() as repo:
        found = await repo.networks()
    return _ok(rep.collection("network", [rep.network_json(_prefix(request), n) for n in found]))


async def get_network(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        return _ok(rep.network_json(_prefix(request), await repo.network(request.match_info["id"])))


async def add_network(request: web.Request) -> web.Response:
    body = await _body(request)
    cluster_id = rep.ref_id(body, "cluster") or ""
    network, _ = await inventory.add_network(
        _ctx(request), str(body.get("name", "")), cluster_id, str(body.get("bridge") or "")
    )
    return _ok(rep.network_json(_prefix(request), network), 201)


async def list_profiles(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        found = await repo.profiles()
    return _ok(rep.collection("vnic_profile", [rep.profile_json(_prefix(request), p) for p in found]))


async def get_profile(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        return _ok(rep.profile_json(_prefix(request), await repo.profile(request.match_info["id"])))


async def list_events(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        entries = await repo.audit_entries(request.query.get("vm"))
    return _ok({"event": [
        {"id": str(e["id"]), "code": e["log_type"], "severity": e["severity"], "description": e["message"],
         "time": e["log_time"].isoformat(), "user": {"user_name": e["user_name"]},
         **({"vm": rep.link(_prefix(request), "vms", str(e["vm_id"]))} if e["vm_id"] else {}),
         **({"nic": {"id": str(e["nic_id"]), "name": e["nic_name"]}} if e["nic_id"] else {})}
        for e in entries
    ]})  # fmt: skip


# -- VMs --------------------------------------------------------------------------------------
async def list_vms(request: web.Request) -> web.Response:
    search = request.query.get("search", "")
    name = None
    if search:
        key, _, value = search.partition("=")
        if key.strip() != "name" or not value:
            raise EngineError(errors.INVALID, f"only 'search=name=<VM name>' is supported, got {search!r}")
        name = value.strip()
    async with _ctx(request).transaction() as repo:
        found = await repo.vms(name=name)
    return _ok(rep.collection("vm", [_vm_json(request, v) for v in found]))


def _vm_json(request: web.Request, vm: Vm) -> dict[str, Any]:
    return rep.vm_json(_prefix(request), vm, _read_only(request) or rules.vm_action_refusals(vm))


async def get_vm(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        return _ok(_vm_json(request, await repo.vm(request.match_info["id"])))


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
def _read_only(request: web.Request) -> dict[str, str] | None:
    if request.get("role") == "admin":
        return None
    why = f"user {_user(request)} may only read"
    return {a: why for a in ("activate", "deactivate", "edit", "remove", "start", "stop")}


def _nic_json(request: web.Request, vm: Vm, cluster: Cluster, nic: Nic) -> dict[str, Any]:
    disabled = _read_only(request) or rules.nic_action_refusals(vm, cluster, nic)
    return rep.nic_json(_prefix(request), nic, disabled)


async def list_nics(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        vm = await repo.vm(request.match_info["vm"])
        cluster = await repo.cluster(vm.cluster_id)
        found = await repo.nics(vm.id)
    return _ok(rep.collection("nic", [_nic_json(request, vm, cluster, n) for n in found]))


async def get_nic(request: web.Request) -> web.Response:
    async with _ctx(request).transaction() as repo:
        vm = await repo.vm(request.match_info["vm"])
        cluster = await repo.cluster(vm.cluster_id)
        return _ok(_nic_json(request, vm, cluster, await repo.nic(vm.id, request.match_info["nic"])))


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


def _plug_action(plug: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def action(request: web.Request) -> web.Response:
        m = request.match_info
        nic = await nics.set_plugged(_ctx(request), _user(request), m["vm"], m["nic"], plug)
        return _ok({"status": "complete", "nic": rep.nic_json(_prefix(request), nic)})

    action.__name__ = "activate_nic" if plug else "deactivate_nic"
    return action


ROUTES: list[tuple[str, str, Callable[[web.Request], Awaitable[web.Response]]]] = [
    ("GET", "", api_root),
    ("GET", "/clusters", list_clusters), ("POST", "/clusters", add_cluster), ("GET", "/clusters/{id}", get_cluster),
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
    from engine.api.openapi import openapi  # imports this module: here, not at the top

    for prefix in PREFIXES:
        for method, path, handler in ROUTES:
            app.router.add_route(method, prefix + path, handler)
        app.router.add_route("GET", f"{prefix}/openapi.json", openapi)
