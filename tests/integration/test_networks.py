"""Networks as an oVirt user adds them: the bridge is named after the network unless given."""

from __future__ import annotations

from pathlib import Path

from devtools.engine_proc import run_engine
from shared_schema.nic import DEVICE_NAME_PATTERN


async def test_a_network_added_with_only_a_name_gets_a_bridge_of_that_name(database_url: str, output_dir: Path) -> None:
    async with run_engine(output_dir / "integration", database_url, "s3cret") as api:
        cluster = await api.ok("POST", "/clusters", {"name": "c", "version": {"major": 4, "minor": 7}})
        blue = await api.ok("POST", "/networks", {"name": "blue", "cluster": {"id": cluster["id"]}})
        assert blue["bridge"] == "blue"
        assert (await api.ok("GET", f"/networks/{blue['id']}"))["bridge"] == "blue"
        profiles = (await api.ok("GET", "/vnicprofiles"))["vnic_profile"]
        assert [p["name"] for p in profiles if p["network"]["id"] == blue["id"]] == ["blue"]

        # An explicit bridge is still taken as given.
        red = await api.ok("POST", "/networks", {"name": "red", "bridge": "br-red", "cluster": {"id": cluster["id"]}})
        assert red["bridge"] == "br-red"

        # A name that cannot be a bridge name, and no bridge: a 400 that says why and what to do.
        status, fault = await api.fault(
            "POST", "/networks", {"name": "production-frontend", "cluster": {"id": cluster["id"]}}
        )
        assert status == 400
        assert "production-frontend" in fault["detail"] and "bridge" in fault["detail"]
        status, fault = await api.fault(
            "POST", "/networks", {"name": "green", "bridge": "br/../x", "cluster": {"id": cluster["id"]}}
        )
        assert status == 400 and "br/../x" in fault["detail"]
        names = {n["name"] for n in (await api.ok("GET", "/networks"))["network"]}
        assert names == {"blue", "red"}  # the refused ones left nothing behind


async def test_the_sql_check_on_bridges_is_the_shared_device_name_rule(migrated_database_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(migrated_database_url)
    try:
        check = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'networks'::regclass "
            "AND pg_get_constraintdef(oid) LIKE '%bridge%'"
        )
    finally:
        await conn.close()
    assert f"^{DEVICE_NAME_PATTERN}$" in check
