"""The engine serves an OpenAPI 3.0 document of its API, and the API keeps to it.

The document must be valid, list exactly the routes the engine serves, and describe the bodies
a real engine (on PostgreSQL) answers with, faults included.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import OpenAPIV30SpecValidator

from devtools.agent_proc import free_port
from devtools.engine_proc import EngineClient, run_engine
from engine.api.openapi import document
from engine.api.paths import LOGOUT_PATH, PREFIXES, TOKEN_PATH
from engine.app import create_app
from engine.settings import EngineSettings

OVIRT, SEED = PREFIXES
ZERO = "00000000-0000-0000-0000-000000000000"
# Success answers the test cannot produce without a host that is up (an agent): tests/e2e runs them.
NEEDS_A_HOST = {("POST", f"{OVIRT}/vms/{{id}}/start", 200)}


async def _public_document(client: EngineClient, prefix: str) -> dict[str, Any]:
    async with client.session.get(f"{client.base}{prefix}/openapi.json") as resp:  # no token
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "application/json"
        doc: dict[str, Any] = await resp.json()
    return doc


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


class Checker:
    """Calls the engine and validates each answer against the document's schema for its status."""

    def __init__(self, client: EngineClient, doc: dict[str, Any]) -> None:
        self.client, self.doc = client, doc
        self.seen: set[tuple[str, str, int]] = set()

    def schema(self, method: str, template: str, status: int) -> dict[str, Any]:
        responses = self.doc["paths"][template][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {template} answered {status}, which the document does not list"
        response = responses[str(status)]
        if "$ref" in response:
            response = self.doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema: dict[str, Any] = response["content"]["application/json"]["schema"]
        return schema

    def validate(self, method: str, template: str, status: int, body: Any) -> None:
        # Refs are '#/components/...': resolve them against a root that carries the components.
        root = {"allOf": [self.schema(method, template, status)], "components": self.doc["components"]}
        OAS30Validator(root, format_checker=oas30_format_checker).validate(body)
        self.seen.add((method, template, status))

    async def call(self, method: str, template: str, status: int, body: Any = None, query: str = "", **ids: str) -> Any:
        """``template`` is a path of the document, e.g. '/ovirt-engine/api/vms/{id}'; ``ids`` fill it in."""
        path = template.format(**ids) + query
        got, answer = await self.client.request(method, path, body)
        assert got == status, f"{method} {path} -> {got} {answer}"
        self.validate(method, template, status, answer)
        return answer


async def test_the_document_is_public_valid_and_follows_the_prefix(database_url: str, output_dir: Path) -> None:
    async with run_engine(output_dir / "integration", database_url, "secret") as engine:
        ovirt, seed = await _public_document(engine, OVIRT), await _public_document(engine, SEED)

    for prefix, doc in ((OVIRT, ovirt), (SEED, seed)):
        OpenAPIV30SpecValidator(doc).validate()
        assert doc["openapi"] == "3.0.3"
        assert doc == json.loads(json.dumps(document(prefix)))
        # Bearer auth everywhere but on the login and on this document.
        assert doc["security"] == [{"bearer": []}]
        assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
        public = {
            (m.upper(), p) for p, ops in doc["paths"].items() for m, op in ops.items() if op.get("security") == []
        }
        assert public == {("POST", TOKEN_PATH), ("POST", LOGOUT_PATH), ("GET", f"{prefix}/openapi.json")}
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                assert op["summary"] and op["operationId"], (method, path)
                names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
                assert names == re.findall(r"\{(\w+)\}", path), (method, path)
                if (method.upper(), path) not in public:
                    assert {"401"} <= set(op["responses"]), (method, path)
                    assert method == "get" or "403" in op["responses"], (method, path)

    # (d) /api/openapi.json describes the /api paths, the same API.
    assert all(p == SEED or p.startswith(SEED + "/") for p in seed["paths"] if p not in (TOKEN_PATH, LOGOUT_PATH))
    assert not any(p.startswith(OVIRT) for p in seed["paths"])
    assert {p.replace(OVIRT, SEED, 1) for p in ovirt["paths"]} == set(seed["paths"])


async def test_the_document_lists_exactly_the_routes_served(database_url: str, output_dir: Path) -> None:
    # What the application's router serves under the API prefixes (/health is for monitoring, /
    # and /static serve the admin page: neither is part of the API) ...
    app = create_app(EngineSettings(database_url="postgresql:///unused", admin_password="x"))
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    not_api = {("GET", "/health"), ("HEAD", "/health"), ("GET", "/metrics"), ("HEAD", "/metrics"), ("GET", "/"),
               ("HEAD", "/"), ("GET", "/static"), ("HEAD", "/static")}  # fmt: skip
    served = {(m, path) for m, path in served - not_api if m != "HEAD"}

    async with run_engine(output_dir / "integration", database_url, "secret") as engine:
        docs = [await _public_document(engine, prefix) for prefix in PREFIXES]
        # ... is what the served documents list, no more and no less, under both prefixes.
        assert set().union(*(_operations(d) for d in docs)) == served
        assert ("POST", TOKEN_PATH) in served
        # The running engine answers each documented operation itself (not the router's 404 / 405),
        # with a body its document describes: here, on an empty database, mostly a fault.
        for doc in docs:
            check = Checker(engine, doc)
            for method, template in sorted(_operations(doc)):
                path = re.sub(r"\{\w+\}", ZERO, template)
                got, answer = await engine.request(method, path, {} if method in ("POST", "PUT") else None)
                assert got != 405 and "is not part of the API" not in str(answer), (method, path, got, answer)
                check.validate(method, template, got, answer)


async def test_real_answers_match_the_schemas(database_url: str, output_dir: Path) -> None:
    async with run_engine(output_dir / "integration", database_url, "secret", readonly_password="peek") as engine:
        doc = await _public_document(engine, OVIRT)
        check = Checker(engine, doc)
        check.validate("GET", f"{OVIRT}/openapi.json", 200, doc)
        api, vm_path, nic_path = OVIRT, f"{OVIRT}/vms/{{id}}", f"{OVIRT}/vms/{{vm}}/nics/{{nic}}"

        # The login itself, and its refusals (OAuth errors, not faults).
        form = {"grant_type": "password", "scope": "ovirt-app-api", "username": "admin@internal", "password": "secret"}
        for data, status in ((form, 200), ({**form, "password": "no"}, 401), ({**form, "grant_type": "x"}, 400)):
            async with engine.session.post(engine.base + TOKEN_PATH, data=data) as resp:
                assert resp.status == status
                check.validate("POST", TOKEN_PATH, status, await resp.json())
        headers = {"Content-Type": "application/json"}
        async with engine.session.post(engine.base + TOKEN_PATH, data="{", headers=headers) as resp:
            assert resp.status == 400  # an OAuth error, as for every refused login
            check.validate("POST", TOKEN_PATH, 400, await resp.json())

        await check.call("GET", api, 200)
        dc = await check.call("POST", f"{api}/datacenters", 201, {"name": "oa-dc", "description": "d"})
        await check.call("POST", f"{api}/datacenters", 409, {"name": "oa-dc"})
        await check.call("GET", f"{api}/datacenters/{{id}}", 200, id=dc["id"])
        cluster = await check.call(
            "POST", f"{api}/clusters", 201, {"name": "oa-cluster", "description": "d", "data_center": {"id": dc["id"]}}
        )
        found = await check.call("GET", f"{api}/datacenters", 200, query="?search=Clusters.name%3Doa-CLUSTER")
        assert [d["id"] for d in found["data_center"]] == [dc["id"]]
        in_dc = await check.call("GET", f"{api}/datacenters/{{id}}/clusters", 200, id=dc["id"])
        assert [c["id"] for c in in_dc["cluster"]] == [cluster["id"]]
        await check.call("POST", f"{api}/clusters", 409, {"name": "oa-cluster"})
        await check.call("GET", f"{api}/clusters", 200)
        await check.call("GET", f"{api}/clusters/{{id}}", 200, id=cluster["id"])
        ref = {"id": cluster["id"]}

        network = await check.call(
            "POST", f"{api}/networks", 201, {"name": "oa-net", "bridge": "hpt-oa0", "cluster": ref}
        )
        await check.call("GET", f"{api}/networks", 200)
        await check.call("GET", f"{api}/networks/{{id}}", 200, id=network["id"])
        in_cluster = await check.call("GET", f"{api}/clusters/{{id}}/networks", 200, id=cluster["id"])
        assert [n["id"] for n in in_cluster["network"]] == [network["id"]]
        # A network of the data center only, then attached to the cluster (oVirt's way).
        spare = await check.call("POST", f"{api}/networks", 201, {"name": "oa-spare", "data_center": {"id": dc["id"]}})
        assert spare["clusters"] == {"cluster": []} and spare["bridge"] == "oa-spare"
        attached = await check.call(
            "POST", f"{api}/clusters/{{id}}/networks", 201, {"id": spare["id"]}, id=cluster["id"]
        )
        assert [c["id"] for c in attached["clusters"]["cluster"]] == [cluster["id"]]
        in_dc = await check.call("GET", f"{api}/datacenters/{{id}}/networks", 200, id=dc["id"])
        assert {n["name"] for n in in_dc["network"]} == {"oa-net", "oa-spare"}
        of_network = await check.call("GET", f"{api}/networks/{{id}}/vnicprofiles", 200, id=spare["id"])
        assert [p["name"] for p in of_network["vnic_profile"]] == ["oa-spare"]
        profiles = await check.call("GET", f"{api}/vnicprofiles", 200)
        (profile,) = [p for p in profiles["vnic_profile"] if p["network"]["id"] == network["id"]]
        (profile,) = (await check.call("GET", f"{api}/vnicprofiles", 200, query="?search=name%3Doa-net"))[
            "vnic_profile"
        ]
        await check.call("GET", f"{api}/vnicprofiles/{{id}}", 200, id=profile["id"])

        # Network QoS of the data center, and vNIC profiles with port mirroring, a QoS, pass-through.
        qoss, dc_id = f"{api}/datacenters/{{id}}/qoss", dc["id"]
        qos_path = f"{qoss}/{{qos}}"
        rates = {"inbound_average": 10, "inbound_peak": 20, "inbound_burst": 5}
        qos = await check.call("POST", qoss, 201, {"name": "oa-qos", "type": "network", **rates}, id=dc_id)
        assert qos["inbound_peak"] == 20 and "outbound_average" not in qos
        half = {"name": "oa-half", "type": "network", "outbound_average": 5}
        assert "together" in (await check.call("POST", qoss, 400, half, id=dc_id))["detail"]
        await check.call("GET", qoss, 200, id=dc_id)
        await check.call("GET", qos_path, 200, id=dc_id, qos=qos["id"])
        outbound = {"outbound_average": 1, "outbound_peak": 2, "outbound_burst": 3}
        assert (await check.call("PUT", qos_path, 200, outbound, id=dc_id, qos=qos["id"]))["outbound_burst"] == 3
        mirror = {
            "name": "oa-mirror",
            "network": {"id": network["id"]},
            "port_mirroring": True,
            "qos": {"id": qos["id"]},
        }
        mirror = await check.call("POST", f"{api}/vnicprofiles", 201, mirror)
        assert mirror["qos"]["id"] == qos["id"] and mirror["pass_through"] == {"mode": "disabled"}
        in_use = await check.call("DELETE", qos_path, 409, id=dc_id, qos=qos["id"])
        assert "used by vNIC profiles oa-mirror" in in_use["detail"]
        of_spare = f"{api}/networks/{{id}}/vnicprofiles"
        sriov = await check.call("POST", of_spare, 201, {"name": "oa-sriov", "pass_through": {"mode": "enabled"}},
                                 id=spare["id"])  # fmt: skip
        await check.call("GET", f"{of_spare}/{{profile}}", 200, id=spare["id"], profile=sriov["id"])
        await check.call("GET", f"{of_spare}/{{profile}}", 404, id=network["id"], profile=sriov["id"])
        plain = await check.call("PUT", f"{api}/vnicprofiles/{{id}}", 200, {"qos": {}}, id=mirror["id"])
        assert "qos" not in plain and plain["port_mirroring"] is True
        await check.call("DELETE", qos_path, 200, id=dc_id, qos=qos["id"])
        await check.call("DELETE", f"{of_spare}/{{profile}}", 200, id=spare["id"], profile=sriov["id"])
        await check.call("DELETE", f"{api}/vnicprofiles/{{id}}", 200, id=mirror["id"])

        # The MAC pool (one: oVirt's Default): read, grown by a second range, a bad change refused.
        (pool,) = (await check.call("GET", f"{api}/macpools", 200))["mac_pool"]
        pool_path = f"{api}/macpools/{{id}}"
        await check.call("GET", pool_path, 200, id=pool["id"])
        lab = {"from": "02:00:00:00:00:00", "to": "02:00:00:00:00:ff"}
        grown = {"ranges": {"range": [*pool["ranges"]["range"], lab]}}
        assert (await check.call("PUT", pool_path, 200, grown, id=pool["id"]))["ranges"]["range"][1] == lab
        refused = await check.call("PUT", pool_path, 400, {"allow_duplicates": True}, id=pool["id"])
        assert "duplicate MAC addresses are not supported" in refused["detail"]
        await check.call("GET", pool_path, 404, id=ZERO)

        # A host whose agent does not answer (nothing listens on the port): it is non_responsive.
        host = {"name": "oa-host", "address": "127.0.0.1", "port": free_port(), "cluster": ref}
        host = await check.call("POST", f"{api}/hosts", 201, host)
        assert host["status"] == "non_responsive"
        await check.call("GET", f"{api}/hosts", 200)
        await check.call("GET", f"{api}/hosts/{{id}}", 200, id=host["id"])

        vm = {"name": "oa-vm", "os": {"type": "rhel_6x64"}, "cluster": ref,
              "custom_properties": {"custom_property": [{"name": "k", "value": "v"}]}}  # fmt: skip
        vm = await check.call("POST", f"{api}/vms", 201, vm)
        await check.call("GET", f"{api}/vms", 200)
        found = await check.call("GET", f"{api}/vms", 200, query="?search=name=oa-vm")
        assert [v["id"] for v in found["vm"]] == [vm["id"]]
        await check.call("GET", vm_path, 200, id=vm["id"])

        nics = f"{api}/vms/{{vm}}/nics"
        nic = await check.call(
            "POST", nics, 201, {"name": "nic1", "vnic_profile": {"id": profile["id"]}, "plugged": False}, vm=vm["id"]
        )
        assert nic["plugged"] is False
        await check.call("GET", nics, 200, vm=vm["id"])
        await check.call("GET", nic_path, 200, vm=vm["id"], nic=nic["id"])
        for extra in ("networkfilterparameters", "reporteddevices", "statistics"):
            empty = await check.call("GET", f"{nic_path}/{extra}", 200, vm=vm["id"], nic=nic["id"])
            assert list(empty.values()) == [[]]
        changed = await check.call("PUT", nic_path, 200, {"linked": False}, vm=vm["id"], nic=nic["id"])
        assert changed["linked"] is False
        done = await check.call("POST", f"{nic_path}/activate", 200, vm=vm["id"], nic=nic["id"])
        assert done["nic"]["plugged"] is True  # the VM is down: only the database changes
        done = await check.call("POST", f"{nic_path}/deactivate", 200, vm=vm["id"], nic=nic["id"])
        assert done["nic"]["plugged"] is False

        attachments = f"{vm_path}/diskattachments"
        disk = {"bootable": True, "disk": {"name": "tiny-disk.qcow2", "format": "cow"}}
        disk = await check.call("POST", attachments, 201, disk, id=vm["id"])
        assert disk["disk"] == {"id": disk["id"], "name": "tiny-disk.qcow2", "format": "cow", "storage_type": "image"}
        await check.call("GET", attachments, 200, id=vm["id"])
        await check.call("GET", f"{attachments}/{{disk}}", 200, id=vm["id"], disk=disk["id"])
        second = {"bootable": True, "disk": {"name": "other.img", "format": "raw"}}
        assert "one bootable disk" in (await check.call("POST", attachments, 409, second, id=vm["id"]))["detail"]
        path = {"disk": {"name": "../etc/shadow", "format": "raw"}}
        assert "not a path" in (await check.call("POST", attachments, 400, path, id=vm["id"]))["detail"]
        await check.call("DELETE", f"{attachments}/{{disk}}", 200, id=vm["id"], disk=disk["id"])
        await check.call("GET", f"{attachments}/{{disk}}", 404, id=vm["id"], disk=disk["id"])
        await check.call("POST", f"{vm_path}/start", 409, {}, id=vm["id"])  # no host is up
        stopped = await check.call("POST", f"{vm_path}/stop", 200, id=vm["id"])
        assert stopped["vm"]["status"] == "down"

        # Faults.
        assert (await check.call("GET", vm_path, 404, id=ZERO))["code"] == "VM_NOT_FOUND"
        await check.call("GET", vm_path, 404, id="not-a-uuid")
        await check.call("GET", nic_path, 404, vm=vm["id"], nic=ZERO)
        await check.call("POST", f"{api}/vms", 400, {"cluster": ref})
        await check.call("POST", f"{api}/vms", 400, {"name": "x", "cluster": ref, "os": {"type": "no-such-os"}})
        bad_mac = {"name": "nic2", "vnic_profile": {"id": profile["id"]}, "mac": {"address": "bogus"}}
        assert (await check.call("POST", nics, 400, bad_mac, vm=vm["id"]))["code"] == "INVALID_MAC_ADDRESS"
        await check.call("POST", nics, 409, {"name": "nic1", "vnic_profile": {"id": profile["id"]}}, vm=vm["id"])
        used = await check.call("DELETE", f"{api}/vnicprofiles/{{id}}", 409, id=profile["id"])
        assert used["detail"].startswith("vNIC profile oa-net is used by NICs (oa-vm/nic1)")
        await check.call("GET", f"{api}/vms", 400, query="?search=bogus")
        async with engine.session.get(f"{engine.base}{api}/vms", headers={"Accept": "application/json"}) as resp:
            assert resp.status == 401
            check.validate("GET", f"{api}/vms", 401, await resp.json())
        reader = EngineClient(engine.base, engine.session)
        await reader.login("readonly@internal", "peek")
        got, answer = await reader.request("POST", f"{api}/vms", {"name": "ro", "cluster": ref})
        assert got == 403
        check.validate("POST", f"{api}/vms", 403, answer)

        events = await check.call("GET", f"{api}/events", 200)
        assert any("vm" in e and "nic" in e for e in events["event"])
        for_vm = await check.call("GET", f"{api}/events", 200, query=f"?vm={vm['id']}")
        assert for_vm["event"] and all(e["vm"]["id"] == vm["id"] for e in for_vm["event"])

        await check.call("DELETE", nic_path, 200, vm=vm["id"], nic=nic["id"])
        await check.call("DELETE", vm_path, 200, id=vm["id"])
        await check.call("DELETE", vm_path, 404, id=vm["id"])

        # Logging out revokes the token (the oVirt SDK's connection.close()).
        assert await check.call("POST", LOGOUT_PATH, 200, {"scope": "ovirt-app-api", "token": reader.token}) == {}
        got, answer = await reader.request("GET", f"{api}/vms")
        assert got == 401 and "log in again" in answer["detail"]
        await check.call("POST", LOGOUT_PATH, 400, {"scope": "ovirt-app-api"})

    # The schemas do bite: refs resolve, and a wrong shape is refused.
    with pytest.raises(ValidationError):
        check.validate("GET", vm_path, 200, {"id": vm["id"], "href": vm["href"]})
    with pytest.raises(ValidationError):
        check.validate("GET", f"{api}/vms", 200, {"vms": []})
    # Every success answer of the document was seen here, but those that need a running host.
    successes = {
        (method.upper(), path, int(status))
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        for status in op["responses"]
        if status.startswith("2")
    }
    assert successes - check.seen == NEEDS_A_HOST
