"""The schema comes from sql/ through the checksummed runner, and applying it again is a no-op."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from engine.adapters import migrations

SCHEMA_SNAPSHOT = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT tablename, indexname, indexdef, '', '' FROM pg_indexes WHERE schemaname = 'public'
ORDER BY 1, 2
"""


async def test_migrations_apply_once_and_twice_change_nothing(database_url: str) -> None:
    files = migrations.packaged()
    assert files, "sql/ holds no migration"
    conn = await asyncpg.connect(database_url)
    try:
        first = await migrations.apply(conn, files)
        assert first == [m.name for m in files]
        before = await conn.fetch(SCHEMA_SNAPSHOT)
        assert await migrations.apply(conn, files) == []
        assert await conn.fetch(SCHEMA_SNAPSHOT) == before
        recorded = await conn.fetch("SELECT name, checksum FROM schema_migrations ORDER BY version")
        assert [(r["name"], r["checksum"]) for r in recorded] == [(m.name, m.checksum) for m in files]
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a int);")
    conn = await asyncpg.connect(database_url)
    try:
        await migrations.apply(conn, migrations.discover(tmp_path))
        (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (a int, b int);")
        with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
            await migrations.apply(conn, migrations.discover(tmp_path))
        columns = await conn.fetchval("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'")
        assert columns == 1
    finally:
        await conn.close()


async def test_two_engines_migrating_at_once_apply_each_file_once(database_url: str) -> None:
    import asyncio

    files = migrations.packaged()
    conns = [await asyncpg.connect(database_url) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrations.apply(c, files) for c in conns))
        assert sorted(results, key=len) == [[], [m.name for m in files]]
    finally:
        for c in conns:
            await c.close()


def test_a_folder_without_migrations_is_refused(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    with pytest.raises(migrations.MigrationError, match="no migration files"):
        migrations.discover(tmp_path)


async def test_a_database_with_a_migration_the_files_do_not_know_is_refused(database_url: str) -> None:
    files = migrations.packaged()
    conn = await asyncpg.connect(database_url)
    try:
        await migrations.apply(conn, files)
        with pytest.raises(migrations.MigrationError, match="does not know"):
            await migrations.apply(conn, files[:-1])  # an engine one migration older than the database
    finally:
        await conn.close()


async def test_cluster_networks_move_into_data_centers_without_loss(database_url: str) -> None:
    """sql/0003: each cluster gets a data center of its own; its networks, profiles and the NICs
    on them stay, attached to the cluster they were made for."""
    files = migrations.packaged()
    before = [m for m in files if m.version < "0003"]
    conn = await asyncpg.connect(database_url)
    try:
        await migrations.apply(conn, before)
        await conn.execute(
            """INSERT INTO clusters (id, name, compat_major, compat_minor) VALUES
                   ('00000000-0000-4000-8000-0000000000c1', 'east', 4, 7),
                   ('00000000-0000-4000-8000-0000000000c2', 'west', 3, 1);
               INSERT INTO networks (id, cluster_id, name, bridge) VALUES
                   ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000c1', 'red', 'br-red'),
                   ('00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000c2', 'red', 'br-red2');
               INSERT INTO vnic_profiles (id, network_id, name) VALUES
                   ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-0000000000a1', 'red');
               INSERT INTO vms (id, name, cluster_id, os_type, memory_bytes) VALUES
                   ('00000000-0000-4000-8000-0000000000d1', 'vm1', '00000000-0000-4000-8000-0000000000c1',
                    'rhel_6x64', 134217728);
               INSERT INTO vm_device (device_id, vm_id, type, device) VALUES
                   ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000d1', 'interface',
                    'bridge');
               INSERT INTO vm_interface (id, vm_id, name, mac_addr, model, vnic_profile_id) VALUES
                   ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000d1', 'nic1',
                    '56:6f:1a:00:00:01', 'virtio', '00000000-0000-4000-8000-0000000000b1');"""
        )
        assert await migrations.apply(conn, files) == [m.name for m in files if m.version >= "0003"]
        rows = await conn.fetch(
            """SELECT c.name AS cluster, d.name AS dc, n.name AS network, n.bridge
               FROM clusters c JOIN data_centers d ON d.id = c.data_center_id
               JOIN cluster_networks cn ON cn.cluster_id = c.id JOIN networks n ON n.id = cn.network_id
               WHERE n.data_center_id = d.id ORDER BY c.name"""
        )
        assert [tuple(r) for r in rows] == [("east", "east", "red", "br-red"), ("west", "west", "red", "br-red2")]
        nic = await conn.fetchrow("SELECT name, network_name, bridge FROM vm_interface_view")
        assert tuple(nic) == ("nic1", "red", "br-red")
    finally:
        await conn.close()
