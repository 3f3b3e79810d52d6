"""The demo ``make run`` sets up through the engine's REST API, as an operator would.

A cluster "Default" (4.7), this host's agent, a network "demo" on the demo bridge, and a VM
"hotplug-demo" (the tiny guest) with one active NIC, started.  Every step finds what an
earlier run made before creating anything, so runs can be repeated.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from devtools import guest

API = "/ovirt-engine/api"


class Api:
    """A small synchronous client of the engine (the demo needs no more)."""

    def __init__(self, base: str, password: str, context: ssl.SSLContext | None = None):
        self.base = base
        self.context = context  # for an engine serving HTTPS: trusts the run's CA
        form = urllib.parse.urlencode({"grant_type": "password", "scope": "ovirt-app-api",
                                       "username": "admin@internal", "password": password}).encode()  # fmt: skip
        with urllib.request.urlopen(f"{base}/ovirt-engine/sso/oauth/token", form, timeout=30, context=context) as resp:
            self.token = json.loads(resp.read())["access_token"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        request = urllib.request.Request(self.base + API + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=90, context=self.context) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None

    def find(self, collection: str, key: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.call("GET", f"/{collection}")[key] if o["name"] == name), None)


def _domain_runs(libvirt_uri: str, vm_id: str) -> bool:
    state = subprocess.run(["virsh", "-q", "-c", libvirt_uri, "domstate", vm_id], capture_output=True, text=True)
    return state.returncode == 0 and state.stdout.strip() == "running"


def ensure_demo(api: Api, agent_listen: str, bridge: str, libvirt_uri: str) -> dict[str, Any]:
    """Create what is missing, start the VM unless it runs; return the VM."""
    cluster = api.find("clusters", "cluster", "Default") or api.call(
        "POST", "/clusters", {"name": "Default", "version": {"major": 4, "minor": 7}}
    )
    address, port = agent_listen.rsplit(":", 1)
    if api.find("hosts", "host", "this-host") is None:
        api.call("POST", "/hosts", {"name": "this-host", "address": address, "port": int(port),
                                    "cluster": {"id": cluster["id"]}})  # fmt: skip
    network = api.find("networks", "network", "demo") or api.call(
        "POST", "/networks", {"name": "demo", "bridge": bridge, "cluster": {"id": cluster["id"]}}
    )
    profile = next(p for p in api.call("GET", "/vnicprofiles")["vnic_profile"] if p["network"]["id"] == network["id"])
    vm = api.find("vms", "vm", "hotplug-demo")
    if vm is None:
        vm = api.call("POST", "/vms", guest.engine_vm("hotplug-demo", cluster["id"]))
        api.call("POST", f"/vms/{vm['id']}/nics", {"name": "nic1", "vnic_profile": {"id": profile["id"]}})
    if vm["status"] != "down" and not _domain_runs(libvirt_uri, vm["id"]):
        api.call("POST", f"/vms/{vm['id']}/stop")  # the engine thought it ran; the host says it does not
        vm["status"] = "down"
    if vm["status"] == "down":
        guest.console_of(vm["id"]).unlink(missing_ok=True)
        vm = api.call("POST", f"/vms/{vm['id']}/start")["vm"]
        guest.wait_for_console(guest.console_of(vm["id"]), guest.READY_MARKER)
    vm["profile_id"] = profile["id"]
    return vm
