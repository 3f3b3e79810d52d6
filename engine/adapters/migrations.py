"""Apply the SQL files of ``sql/`` in order, once each, remembering a checksum of each.

The files are read as package resources (``engine.schema_sql``, which is ``sql/`` in a checkout
and in the wheel), never through a path relative to the source tree.  A file that changed after
it was applied is refused: schema history is append-only.  So is a database that holds a
migration no file knows (an older engine on a newer schema), and so is an empty set of files.
The whole run holds a transaction-scoped advisory lock, so two engines starting together apply
each migration once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

# Any constant works; it only has to be the same in every engine process.
_LOCK_KEY = 0x486F74506C7567

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """The schema history in the database does not match the files."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def packaged() -> list[Migration]:
    """The engine's own migrations, from the installed package (or the checkout's sql/)."""
    return discover(resources.files("engine.schema_sql"))


def discover(directory: Traversable) -> list[Migration]:
    found: list[Migration] = []
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"{entry.name}: migration files are named NNNN_words.sql")
        found.append(Migration(match.group(1), entry.name, entry.read_text(encoding="utf-8")))
    if not found:
        raise MigrationError(f"no migration files (NNNN_words.sql) in {directory}; the installation is incomplete")
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number in {directory}")
    return found


async def apply(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply what is missing; return the names applied now (empty when up to date)."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    text PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        known = {r["version"]: r for r in rows}
        unknown = [r["name"] for r in rows if r["version"] not in {m.version for m in migrations}]
        if unknown:
            raise MigrationError(
                f"the database holds migrations this engine does not know ({', '.join(unknown)}): "
                "it was migrated by a newer engine; run that engine, or restore a database that matches this one"
            )
        for migration in migrations:
            row = known.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} was changed after it was applied as {row['name']}; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.name)
    return applied_now
