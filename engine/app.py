"""Wire the engine: an aiohttp application whose resources live in ``cleanup_ctx``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from engine.adapters import migrations
from engine.settings import EngineSettings

SETTINGS = web.AppKey("settings", EngineSettings)
POOL = web.AppKey("pool", asyncpg.Pool)


async def _database(app: web.Application) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(app[SETTINGS].database_url, min_size=1, max_size=10)
    async with pool.acquire() as conn:
        await migrations.apply(conn, migrations.discover(migrations.default_sql_dir()))
    app[POOL] = pool
    yield
    await pool.close()


async def health(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        version = await conn.fetchval("SHOW server_version")
    return web.json_response({"status": "ok", "database": f"PostgreSQL {version}"})


def create_app(settings: EngineSettings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.router.add_get("/health", health)
    return app
