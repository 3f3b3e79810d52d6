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

        json = {"Accept": "application/json"}
        async with http.get(admin.base + "/ovirt-engine/api/vms", headers=json) as resp:  # no token
            assert resp.status == 401
            body = await resp.json()
            assert body["code"] == "UNAUTHORIZED" and TOKEN_PATH in body["detail"]
        async with http.get(admin.base + "/api/vms", headers={**json, "Authorization": "Bearer forged"}) as resp:
            assert resp.status == 401 and "expired" in (await resp.json())["detail"]
        async with http.get(admin.base + "/api/vms") as resp:  # as oVirt: XML unless asked for JSON
            assert resp.status == 401 and resp.content_type == "application/xml"
            assert "<fault><reason>Unauthorized</reason>" in await resp.text()

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
        headers = {
            "Authorization": f"Bearer {api.token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        async with api.session.post(api.base + "/ovirt-engine/api/clusters", data=b"{nope", headers=headers) as resp:
            assert resp.status == 400 and "not valid JSON" in (await resp.json())["detail"]
        status, fault = await api.request(
            "POST", "/vms", {"name": "x", "cluster": {"id": "not-a-uuid"}, "os": {"type": "rhel_6x64"}}
        )
        assert status == 404 and fault["code"] == "CLUSTER_NOT_FOUND"
        status, fault = await api.request("GET", "/vms?search=os=linux")
        assert status == 400 and "searched by name, status" in fault["detail"]


async def test_the_read_only_user_can_do_no_nic_action_and_is_shown_why(database_url: str, output_dir: Path) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret", readonly_password="peek") as admin:
        cluster = await admin.ok("POST", "/clusters", {"name": "c1"})
        await admin.ok("POST", "/networks", {"name": "net1", "cluster": {"id": cluster["id"]}})
        profile = (await admin.ok("GET", "/vnicprofiles"))["vnic_profile"][0]
        vm = await admin.ok(
            "POST", "/vms", {"name": "vm1", "cluster": {"id": cluster["id"]}, "os": {"type": "rhel_6x64"}}
        )
        nic = await admin.ok("POST", f"/vms/{vm['id']}/nics", {"name": "nic1", "vnic_profile": {"id": profile["id"]},
                                                               "plugged": False})  # fmt: skip
        base = f"/vms/{vm['id']}/nics"
        reader = type(admin)(admin.base, admin.session)
        await reader.login("readonly@internal", "peek")
        for method, path, body in (
            ("POST", base, {"name": "nic2", "vnic_profile": {"id": profile["id"]}}),
            ("PUT", f"{base}/{nic['id']}", {"name": "renamed"}),
            ("PUT", f"{base}/{nic['id']}", {"plugged": True}),
            ("POST", f"{base}/{nic['id']}/activate", {}),
            ("POST", f"{base}/{nic['id']}/deactivate", {}),
            ("DELETE", f"{base}/{nic['id']}", None),
        ):
            status, fault = await reader.request(method, path, body)
            assert (status, fault["code"]) == (403, "FORBIDDEN"), (method, path, fault)
        # Nothing changed, and what the reader is shown says so before it tries.
        shown = await reader.ok("GET", f"{base}/{nic['id']}")
        assert (shown["name"], shown["plugged"]) == ("nic1", False)
        assert set(shown["disabled_actions"]) == {"activate", "deactivate", "edit", "edit_link", "remove"}
        assert "add_nic" in (await reader.ok("GET", f"/vms/{vm['id']}"))["disabled_actions"]
        assert "add_nic" not in (await admin.ok("GET", f"/vms/{vm['id']}"))["disabled_actions"]
        assert [n["name"] for n in (await admin.ok("GET", base))["nic"]] == ["nic1"]


async def test_a_duplicate_mac_is_refused_with_its_reason(database_url: str, output_dir: Path) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret") as api:
        cluster = await api.ok("POST", "/clusters", {"name": "c1"})
        await api.ok("POST", "/networks", {"name": "net1", "cluster": {"id": cluster["id"]}})
        profile = (await api.ok("GET", "/vnicprofiles"))["vnic_profile"][0]
        vms = [await api.ok("POST", "/vms", {"name": f"vm{i}", "cluster": {"id": cluster["id"]}}) for i in (1, 2)]
        body = {"vnic_profile": {"id": profile["id"]}, "mac": {"address": "56:6f:1a:00:10:01"}, "plugged": False}
        await api.ok("POST", f"/vms/{vms[0]['id']}/nics", {**body, "name": "nic1"})
        status, fault = await api.fault("POST", f"/vms/{vms[1]['id']}/nics", {**body, "name": "nic1"})
        assert (status, fault["code"]) == (409, "MAC_ADDRESS_IN_USE")
        assert "MAC address" in fault["detail"] and "already used" in fault["detail"]
        assert (await api.ok("GET", f"/vms/{vms[1]['id']}/nics"))["nic"] == []


async def test_guessing_passwords_slows_down_and_the_right_user_still_gets_in(
    database_url: str, output_dir: Path
) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret", login_attempts="3") as api:
        form = {"grant_type": "password", "scope": "ovirt-app-api", "username": "admin@internal"}
        answers = []
        for guess in range(5):
            async with api.session.post(api.base + TOKEN_PATH, data={**form, "password": f"guess{guess}"}) as resp:
                answers.append((resp.status, resp.headers.get("Retry-After")))
        assert [status for status, _ in answers[:3]] == [401, 401, 401]
        assert answers[3][0] == 429 and int(answers[3][1] or 0) >= 1  # locked: the password is not even tried
        async with api.session.post(api.base + TOKEN_PATH, data={**form, "password": "s3cret"}) as resp:
            assert resp.status == 429  # the right password waits too ...
            wait = int(resp.headers["Retry-After"])
            assert "try again in" in (await resp.json())["error_description"]
        await asyncio.sleep(wait + 0.2)
        async with api.session.post(api.base + TOKEN_PATH, data={**form, "password": "s3cret"}) as resp:
            assert resp.status == 200  # ... and then gets in
            assert (await resp.json())["access_token"]


async def test_the_database_keeps_no_password_and_no_token(database_url: str, output_dir: Path) -> None:
    import asyncpg

    async with run_engine(output_dir / "integration", database_url, "s3cret-pw", readonly_password="peek-pw",
                          token_ttl="2") as api:  # fmt: skip
        conn = await asyncpg.connect(database_url)
        try:
            users = {r["name"]: r["password_hash"] for r in await conn.fetch("SELECT * FROM api_users")}
            tokens = [r["token"] for r in await conn.fetch("SELECT token FROM api_sessions")]
        finally:
            await conn.close()
        assert set(users) == {"admin@internal", "readonly@internal"}
        assert all(h.startswith("scrypt$") and "pw" not in h for h in users.values())
        assert tokens and api.token not in tokens
        await api.ok("GET", "/vms")
        await asyncio.sleep(2.5)  # token_ttl = 2 s
        status, fault = await api.request("GET", "/vms")
        assert status == 401 and "log in again" in fault["detail"]
