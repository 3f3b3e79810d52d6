"""Wire the agent: an aiohttp application serving JSON-RPC at ``POST /jsonrpc`` and Prometheus
metrics at ``GET /metrics``.

The hypervisor connection and the services live in ``cleanup_ctx``: opened when the
application starts, closed when it stops; nothing is created at import time.  At start, port
mirroring is restored from the running domains' metadata before the agent serves, and then
reconciled every ``mirror_sync_interval`` seconds in the background.  Each application has its
own metrics registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from shared_schema.tls import read_tls_records_at_a_time
from vdsm_agent import rpc
from vdsm_agent.hypervisor import Hypervisor, LibvirtHypervisor
from vdsm_agent.metrics import CONTENT_TYPE, Metrics
from vdsm_agent.mirroring import HostNet, PortMirror
from vdsm_agent.nics import NicService
from vdsm_agent.settings import AgentSettings
from vdsm_agent.vms import VmService

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", AgentSettings)
METRICS = web.AppKey("metrics", Metrics)
SERVICES = web.AppKey("services", rpc.Services)
METHODS = web.AppKey("methods", dict)


def _hypervisor(settings: AgentSettings) -> tuple[Hypervisor, HostNet | None]:
    """The hypervisor, and the host side port mirroring works on (None: the real one)."""
    if settings.hypervisor == "simulated":
        from vdsm_agent.simulated import SimulatedHostNet, SimulatedHypervisor

        simulated = SimulatedHypervisor()
        return simulated, SimulatedHostNet(simulated)  # never touches the host's tc
    return LibvirtHypervisor(settings.libvirt_uri), None


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    metrics = app[METRICS]
    hypervisor, host_net = _hypervisor(settings)
    mirror = PortMirror(hypervisor, host_net)
    nics = NicService(hypervisor, mirror, settings.unplug_timeout, settings.unplug_retry_interval, metrics)
    await hypervisor.open(nics.on_device_event)
    try:
        await mirror.restore(await hypervisor.domains())
    except Exception:  # the agent must serve even so: unplugs and stats do not need mirroring
        log.exception("restoring port mirroring failed")
    syncing = asyncio.get_running_loop().create_task(mirror.run(settings.mirror_sync_interval))
    log_dir = Path(settings.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    vms = VmService(hypervisor, nics, mirror, metrics, Path(settings.images_dir), log_dir, settings.pcie_hotplug_ports)
    services = rpc.Services(hypervisor, nics, vms, metrics)
    app[SERVICES] = services
    app[METHODS] = rpc.methods(services)
    yield
    syncing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await syncing
    await nics.close()
    await hypervisor.close()


# A request body larger than this is refused with 413 before it is parsed; the largest real
# request (Host.getVMFullList of a thousand VMs, VM.create with a dozen NICs) is tens of kB.
MAX_REQUEST_BYTES = 1024 * 1024


async def _body(request: web.Request) -> bytes:
    """The request's bytes, or HTTP's refusal: 415 compressed, 413 too large, 400 broken framing."""
    # A compressed body is refused unread: the engine never compresses, and a body that is never
    # inflated cannot be a decompression bomb (aiohttp's own inflating is off: create_app).
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        raise web.HTTPUnsupportedMediaType(
            text="request bodies are read as sent: no Content-Encoding", headers={"Accept-Encoding": "identity"}
        )
    if (request.content_length or 0) > MAX_REQUEST_BYTES:  # said up front: refused before a byte is read
        raise web.HTTPRequestEntityTooLarge(MAX_REQUEST_BYTES, request.content_length or 0)
    try:
        return await request.read()  # chunked, past MAX_REQUEST_BYTES: 413 too (client_max_size)
    except (RequestPayloadError, HttpProcessingError):  # chunked framing that breaks off: not a 500
        raise web.HTTPBadRequest(text="the request body cannot be read: its chunked framing is broken") from None


async def jsonrpc(request: web.Request) -> web.Response:
    # The bytes, not request.text(): JSON is UTF-8 whatever charset the Content-Type names, and a
    # body that does not decode is a JSON-RPC parse error, not a server error.
    answer = await rpc.dispatch(await _body(request), request.app[METHODS])
    if not answer:  # a notification: nothing to say
        return web.Response(status=204)
    return web.Response(text=answer, content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


def create_app(settings: AgentSettings) -> web.Application:
    read_tls_records_at_a_time()  # each call in flight holds a connection: 16 KiB each, not 256
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, handler_args={"auto_decompress": False})
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(_services)
    app.router.add_post("/jsonrpc", jsonrpc)
    app.router.add_get("/metrics", metrics)
    return app
