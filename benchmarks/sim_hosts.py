"""Many simulated hosts in one process, for scale benchmarks only.

Each host is a whole agent application (``vdsm_agent.app.create_app``) on the SIMULATED
hypervisor — devices in memory, no QEMU — on its own loopback port, over mutual TLS with the
run's certificates exactly as a real agent.  One process serves them all on one event loop: a
thousand real agent processes would not fit this machine, and the engine cannot tell the
difference (it knows hosts by address and port).  It proves nothing about libvirt.

    python -m benchmarks.sim_hosts --hosts 1000 --first-port 40000

prints ``ready <first port> <hosts>`` once every host listens, and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from devtools import guest, paths, tls
from shared_schema.tls import server_context
from vdsm_agent.app import create_app
from vdsm_agent.settings import AgentSettings


async def serve(hosts: int, first_port: int) -> None:
    run = tls.ensure()
    cert, key = run.cert("agent")
    context = server_context(str(cert), str(key), str(run.ca))
    guest.ensure_built()  # VM.create checks that the images it names exist
    images, consoles = str(guest.GUEST_DIR), str(paths.consoles_dir())
    runners = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        for i in range(hosts):
            settings = AgentSettings(listen=f"127.0.0.1:{first_port + i}", hypervisor="simulated",
                                     log_level="WARNING", mirror_sync_interval=3600, images_dir=images,
                                     log_dir=consoles)  # fmt: skip
            runner = web.AppRunner(create_app(settings), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", first_port + i, ssl_context=context).start()
            runners.append(runner)
        print(f"ready {first_port} {hosts}", flush=True)
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--first-port", type=int, default=40000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.hosts, args.first_port))
