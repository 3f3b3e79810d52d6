"""Wire the engine: an aiohttp application whose resources live in ``cleanup_ctx``.

Middlewares, outermost first: errors → faults, then authentication.  Nothing is created at
import time; ``create_app`` is called by ``engine serve`` (and by tests) with settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from engine.adapters import migrations
from engine.adapters.agent_client import AgentClients
from engine.api import auth, routes
from engine.api import web as admin_page
from engine.api.errors import error_middleware
from engine.api.keys import CONTEXT, POOL, SETTINGS
from engine.services.context import Context
from engine.settings import EngineSettings


async def _resources(app: web.Application) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(app[SETTINGS].database_url, min_size=1, max_size=40)
    try:
        async with pool.acquire() as conn:
            await migrations.apply(conn, migrations.packaged())
        agents = AgentClients(timeout=app[SETTINGS].host_timeout)
        app[POOL] = pool
        app[CONTEXT] = Context(pool, agents)
        yield
        await agents.close()
    finally:
        await pool.close()


async def health(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        version = await conn.fetchval("SHOW server_version")
    return web.json_response({"status": "ok", "database": f"PostgreSQL {version}"})


def create_app(settings: EngineSettings) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth.auth_middleware])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/health", health)
    app.router.add_post(auth.TOKEN_PATH, auth.token)
    routes.add_routes(app)
    admin_page.add_routes(app)
    return app
