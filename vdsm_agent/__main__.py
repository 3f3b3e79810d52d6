"""``vdsm-agent [--listen HOST:PORT] [--config FILE] [--libvirt-uri URI]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from shared_schema.config import ConfigError
from vdsm_agent.settings import build


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
    from aiohttp import web

    from vdsm_agent.app import create_app

    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
