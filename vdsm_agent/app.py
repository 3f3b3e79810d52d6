"""Wire the agent: an aiohttp application serving JSON-RPC at ``POST /jsonrpc``.

The hypervisor connection and the services live in ``cleanup_ctx``: opened when the
application starts, closed when it stops; nothing is created at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from vdsm_agent import rpc
from vdsm_agent.hypervisor import Hypervisor, LibvirtHypervisor
from vdsm_agent.mirroring import PortMirror
from vdsm_agent.nics import NicService
from vdsm_agent.settings import AgentSettings
from vdsm_agent.vms import VmService

SETTINGS = web.AppKey("settings", AgentSettings)
SERVICES = web.AppKey("services", rpc.Services)
METHODS = web.AppKey("methods", dict)


def _hypervisor(settings: AgentSettings) -> Hypervisor:
    if settings.hypervisor == "simulated":
        from vdsm_agent.simulated import SimulatedHypervisor

        return SimulatedHypervisor()
    return LibvirtHypervisor(settings.libvirt_uri)


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hypervisor = _hypervisor(settings)
    mirror = PortMirror()
    nics = NicService(hypervisor, mirror, settings.unplug_timeout)
    await hypervisor.open(nics.on_device_event)
    services = rpc.Services(hypervisor, nics, VmService(hypervisor, nics, mirror))
    app[SERVICES] = services
    app[METHODS] = rpc.methods(services)
    yield
    await hypervisor.close()


async def jsonrpc(request: web.Request) -> web.Response:
    answer = await rpc.dispatch(await request.text(), request.app[METHODS])
    if not answer:  # a notification: nothing to say
        return web.Response(status=204)
    return web.Response(text=answer, content_type="application/json")


def create_app(settings: AgentSettings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_services)
    app.router.add_post("/jsonrpc", jsonrpc)
    return app
