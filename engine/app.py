"""Wire the engine: an aiohttp application whose resources live in ``cleanup_ctx``.

Middlewares, outermost first: request metrics, errors → faults, then authentication.  Nothing
is created at import time; ``create_app`` is called by ``engine serve`` (and by tests) with
settings, and may be given another :class:`~engine.adapters.agent_client.Agent` (tests).  The
host monitor and the heap trim (engine/heap.py) run as background tasks for as long as the
application does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine import heap, pki, timing
from engine.adapters import database, migrations
from engine.adapters.agent_client import Agent, JsonRpcAgents
from engine.api import auth, openapi, routes
from engine.api import web as admin_page
from engine.api.errors import error_middleware
from engine.api.formats import MAX_BODY
from engine.api.keys import CONTEXT, METRICS, SETTINGS
from engine.api.paths import HEALTH, LOGOUT_PATH, METRICS_PATH, OPENAPI, PREFIXES, TOKEN_PATH
from engine.metrics import EngineMetrics
from engine.services import sessions, views
from engine.services.context import Context
from engine.services.hosts_calls import HostCalls
from engine.services.journal import Journal
from engine.services.monitoring import Monitor
from engine.settings import EngineSettings
from engine.timing import request_phases

log = logging.getLogger(__name__)


def _resources(make_agent: Callable[[EngineSettings], Agent]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        pool = await database.create_pool(settings.database_url, max_size=20)  # two cores' worth of work in flight
        # The operations journal writes while a use case holds a connection of the main pool:
        # a pool of its own, so it can never wait for one (engine/services/journal.py).
        journal_pool = await database.create_pool(settings.database_url, max_size=10)
        try:
            async with pool.acquire() as conn:
                await migrations.apply(conn, migrations.packaged())
            agent = make_agent(settings)
            engine_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
            hosts = HostCalls(agent, settings.poll_timeout, app[METRICS])
            app[CONTEXT] = ctx = Context(pool, hosts, Journal(journal_pool, engine_id))
            await sessions.sync_users(ctx, settings)
            background = [
                asyncio.create_task(Monitor(ctx, engine_id, settings, app[METRICS]).run(), name="monitor"),
                asyncio.create_task(heap.trim_now_and_then(), name="heap trim"),
            ]
            yield
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await agent.close()
        finally:
            await journal_pool.close()
            await pool.close()

    return resources


@web.middleware
async def request_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started, status = time.monotonic(), 500
    try:
        with request_phases() as phases:
            response = await handler(request)
        status = response.status
        phases["app"] = time.monotonic() - started
        response.headers["Server-Timing"] = timing.header(phases)
        return response
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        request.app[METRICS].requests.labels(request.method, route, str(status)).observe(time.monotonic() - started)


async def health(request: web.Request) -> web.Response:
    version = await views.database_version(request.app[CONTEXT])
    return web.json_response({"status": "ok", "database": f"PostgreSQL {version}"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def agents_over_tls(settings: EngineSettings) -> Agent:
    """The real agents: mutual TLS with the deployment's CA, unless insecure_agents."""
    if settings.insecure_agents:
        log.warning("insecure_agents: talking to agents over plain HTTP, without proving anyone's identity")
        return JsonRpcAgents(timeout=settings.host_timeout)
    tls = pki.client_context(Path(settings.agent_cert), Path(settings.agent_key), Path(settings.agent_ca))
    return JsonRpcAgents(timeout=settings.host_timeout, tls=tls)


def create_app(
    settings: EngineSettings, make_agent: Callable[[EngineSettings], Agent] = agents_over_tls
) -> web.Application:
    app = web.Application(
        middlewares=[request_metrics, error_middleware, auth.auth_middleware], client_max_size=MAX_BODY
    )
    app[SETTINGS] = settings
    app[METRICS] = EngineMetrics()
    app.cleanup_ctx.append(_resources(make_agent))
    app.router.add_get(HEALTH, health)
    app.router.add_get(METRICS_PATH, metrics)
    app.router.add_post(TOKEN_PATH, auth.token)
    app.router.add_post(LOGOUT_PATH, auth.logout)
    routes.add_routes(app)
    for prefix in PREFIXES:
        app.router.add_get(prefix + OPENAPI, openapi.openapi)
    admin_page.add_routes(app)
    return app
