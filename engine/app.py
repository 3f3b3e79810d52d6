"""Wire the engine: an aiohttp application whose resources live in ``cleanup_ctx``.

Middlewares, outermost first: errors → faults, then authentication.  Nothing is created at
import time; ``create_app`` is called by ``engine serve`` (and by tests) with settings, and
may be given another :class:`~engine.adapters.agent_client.Agent` (tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from engine.adapters import migrations
from engine.adapters.agent_client import Agent, JsonRpcAgents
from engine.api import auth, openapi, routes
from engine.api import web as admin_page
from engine.api.errors import error_middleware
from engine.api.formats import MAX_BODY
from engine.api.keys import CONTEXT, SETTINGS
from engine.api.paths import HEALTH, LOGOUT_PATH, OPENAPI, PREFIXES, TOKEN_PATH
from engine.services import views
from engine.services.context import Context
from engine.services.hosts_calls import HostCalls
from engine.settings import EngineSettings


def _resources(make_agent: Callable[[EngineSettings], Agent]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(app[SETTINGS].database_url, min_size=1, max_size=40)
        try:
            async with pool.acquire() as conn:
                await migrations.apply(conn, migrations.packaged())
            agent = make_agent(app[SETTINGS])
            app[CONTEXT] = Context(pool, HostCalls(agent))
            yield
            await agent.close()
        finally:
            await pool.close()

    return resources


async def health(request: web.Request) -> web.Response:
    version = await views.database_version(request.app[CONTEXT])
    return web.json_response({"status": "ok", "database": f"PostgreSQL {version}"})


def create_app(
    settings: EngineSettings,
    make_agent: Callable[[EngineSettings], Agent] = lambda s: JsonRpcAgents(timeout=s.host_timeout),
) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth.auth_middleware], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_resources(make_agent))
    app.router.add_get(HEALTH, health)
    app.router.add_post(TOKEN_PATH, auth.token)
    app.router.add_post(LOGOUT_PATH, auth.logout)
    routes.add_routes(app)
    for prefix in PREFIXES:
        app.router.add_get(prefix + OPENAPI, openapi.openapi)
    admin_page.add_routes(app)
    return app
