"""``vdsm-agent [--listen HOST:PORT] [--config FILE] [--libvirt-uri URI]``."""

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
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info(
            "serving JSON-RPC on http://%s/jsonrpc (hypervisor: %s)",
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
    args = parser.parse_args(argv)
    try:
        settings = build(args.config, {"listen": args.listen, "libvirt_uri": args.libvirt_uri})
    except ConfigError as exc:
        parser.exit(2, f"vdsm-agent: {exc}\n")
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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
