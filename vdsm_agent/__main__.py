"""``vdsm-agent [--listen HOST:PORT] [--config FILE] [--libvirt-uri URI] [--insecure]``.

Serves JSON-RPC over mutual TLS only (the deployment CA's clients: the engine), unless
``--insecure``: plain HTTP, with a warning at every start."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from shared_schema.config import ConfigError
from shared_schema.tls import server_context
from vdsm_agent.settings import AgentSettings, build

log = logging.getLogger("vdsm_agent")


def _notify_systemd(state: str) -> None:
    """sd_notify(3) for Type=notify units: one datagram to $NOTIFY_SOCKET, if set."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(state.encode(), address)


async def serve(settings: AgentSettings) -> None:
    from aiohttp import web

    from vdsm_agent.app import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tls = None if settings.insecure else server_context(settings.tls_cert, settings.tls_key, settings.tls_ca)
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port, ssl_context=tls).start()
        log.info(
            "serving JSON-RPC on %s://%s/jsonrpc (hypervisor: %s)",
            "http" if tls is None else "https (mutual TLS)",
            settings.listen,
            settings.hypervisor,
        )
        _notify_systemd("READY=1")
        await stop.wait()
        _notify_systemd("STOPPING=1")
        log.info("stopping")
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vdsm-agent", description=__doc__)
    parser.add_argument("--listen", help="HOST:PORT to serve on (default 0.0.0.0:54321)")
    parser.add_argument("--config", type=Path, help="TOML config file")
    parser.add_argument("--libvirt-uri", help="libvirt connection URI (default qemu:///system)")
    parser.add_argument("--insecure", action="store_true", default=None,
                        help="serve plain HTTP without client certificates (a lab only)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        settings = build(args.config, {"listen": args.listen, "libvirt_uri": args.libvirt_uri,
                                       "insecure": args.insecure})  # fmt: skip
    except ConfigError as exc:
        parser.exit(2, f"vdsm-agent: {exc}\n")
    if not settings.insecure:
        missing = [f for f in (settings.tls_cert, settings.tls_key, settings.tls_ca) if not Path(f).is_file()]
        if missing:
            parser.exit(2, f"vdsm-agent: TLS files missing: {', '.join(missing)}; make them with "
                           "`engine pki issue-host NAME ADDRESS` on the engine's machine, "
                           "or run with --insecure (a lab only)\n")  # fmt: skip
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.insecure:
        log.warning("--insecure: serving plain HTTP without client certificates: anyone who reaches %s "
                    "can drive this host", settings.listen)  # fmt: skip
    if settings.unplug_retry_interval <= 5:
        log.warning(
            "unplug_retry_interval is %g s: on PCIe (q35) machines a second unplug request within 5 s "
            "cancels the one in progress",
            settings.unplug_retry_interval,
        )
    try:
        asyncio.run(serve(settings))
    except OSError as exc:
        parser.exit(1, f"vdsm-agent: {exc}\n")


if __name__ == "__main__":
    main()
