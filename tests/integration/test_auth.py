"""Every API call needs a token; the read-only user can read but not change anything."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from devtools.engine_proc import TOKEN_PATH, run_engine


async def test_login_tokens_and_roles(database_url: str, output_dir: Path) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret", readonly_password="peek") as admin:
        http = admin.session
        form = {"grant_type": "password", "scope": "ovirt-app-api", "username": "admin@internal", "password": "nope"}
        async with http.post(admin.base + TOKEN_PATH, data=form) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"] == "access_denied"
        async with http.post(admin.base + TOKEN_PATH, data={**form, "grant_type": "client_credentials"}) as resp:
            assert resp.status == 400

        async with http.get(admin.base + "/ovirt-engine/api/vms") as resp:  # no token
            assert resp.status == 401
            body = await resp.json()
            assert body["code"] == "UNAUTHORIZED" and TOKEN_PATH in body["detail"]
        async with http.get(admin.base + "/api/vms", headers={"Authorization": "Bearer forged"}) as resp:
            assert resp.status == 401 and "expired" in (await resp.json())["detail"]

        cluster = await admin.ok("POST", "/clusters", {"name": "c1", "version": {"major": 4, "minor": 7}})
        # The seed's /api prefix serves the same objects.
        status, same = await admin.request("GET", f"/api/clusters/{cluster['id']}")
        assert status == 200 and same["name"] == "c1" and same["href"] == f"/api/clusters/{cluster['id']}"

        reader = type(admin)(admin.base, http)
        await reader.login("readonly@internal", "peek")
        assert [c["name"] for c in (await reader.ok("GET", "/clusters"))["cluster"]] == ["c1"]
        status, fault = await reader.request("POST", "/clusters", {"name": "c2"})
        assert status == 403 and fault["code"] == "FORBIDDEN" and "readonly@internal" in fault["detail"]
        assert [c["name"] for c in (await admin.ok("GET", "/clusters"))["cluster"]] == ["c1"]


async def test_engine_refuses_to_start_without_an_admin_password(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "--database-url", database_url, stderr=asyncio.subprocess.PIPE, env=env
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"ENGINE_ADMIN_PASSWORD" in err


async def test_unknown_paths_and_bad_json_get_faults(database_url: str, output_dir: Path) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret") as api:
        status, fault = await api.request("GET", "/frobnicators")
        assert status == 404 and fault["reason"] == "Not found"
        headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
        async with api.session.post(api.base + "/ovirt-engine/api/clusters", data=b"{nope", headers=headers) as resp:
            assert resp.status == 400 and "not valid JSON" in (await resp.json())["detail"]
        status, fault = await api.request(
            "POST", "/vms", {"name": "x", "cluster": {"id": "not-a-uuid"}, "os": {"type": "rhel_6x64"}}
        )
        assert status == 404 and fault["code"] == "CLUSTER_NOT_FOUND"
        status, fault = await api.request("GET", "/vms?search=os=linux")
        assert status == 400 and "search=name=" in fault["detail"]
