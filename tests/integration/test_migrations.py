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
