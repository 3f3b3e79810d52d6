"""Wire the agent: an aiohttp application serving JSON-RPC at ``POST /jsonrpc``."""

from __future__ import annotations

from aiohttp import web

from vdsm_agent import rpc
from vdsm_agent.settings import AgentSettings

SETTINGS = web.AppKey("settings", AgentSettings)
METHODS = web.AppKey("methods", dict)


async def jsonrpc(request: web.Request) -> web.Response:
    answer = await rpc.dispatch(await request.text(), request.app[METHODS])
    if not answer:  # a notification: nothing to say
        return web.Response(status=204)
    return web.Response(text=answer, content_type="application/json")


def create_app(settings: AgentSettings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[METHODS] = rpc.methods()
    app.router.add_post("/jsonrpc", jsonrpc)
    return app
