"""``engine [serve|migrate] [--listen HOST:PORT] [--database-url URL] [--config FILE]
[--tls-cert FILE --tls-key FILE]``; ``engine pki …`` makes the deployment's certificates."""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path

from engine.settings import EngineSettings, build
from shared_schema.config import ConfigError


def _parse(argv: list[str] | None) -> tuple[str, EngineSettings]:
    parser = argparse.ArgumentParser(prog="engine", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument("--listen", help="HOST:PORT to serve on (default 127.0.0.1:8080)")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: $DATABASE_URL)")
    parser.add_argument("--config", type=Path, help="TOML config file")
    parser.add_argument("--tls-cert", help="serve the API over HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="... and this key")
    args = parser.parse_args(argv)
    try:
        settings = build(args.config, {"listen": args.listen, "database_url": args.database_url,
                                       "tls_cert": args.tls_cert, "tls_key": args.tls_key})  # fmt: skip
    except ConfigError as exc:
        parser.exit(2, f"engine: {exc}\n")
    if not settings.database_url:
        parser.exit(2, "engine: no database: set DATABASE_URL or pass --database-url\n")
    if args.command == "serve" and not settings.admin_password:
        parser.exit(2, "engine: no password for admin@internal: set ENGINE_ADMIN_PASSWORD or admin_password\n")
    if args.command == "serve" and not settings.insecure_agents:
        missing = [k for k in ("agent_ca", "agent_cert", "agent_key") if not getattr(settings, k)]
        if missing:
            parser.exit(2, f"engine: no certificate to prove itself to the agents ({', '.join(missing)} unset): "
                           "make them with `engine pki init` and `engine pki issue-engine`, or set "
                           "insecure_agents = true for a lab without TLS\n")  # fmt: skip
    if bool(settings.tls_cert) != bool(settings.tls_key):
        parser.exit(2, "engine: HTTPS needs both --tls-cert and --tls-key\n")
    return args.command, settings


def _https(settings: EngineSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def _migrate(settings: EngineSettings) -> None:
    import asyncpg

    from engine.adapters import migrations

    conn = await asyncpg.connect(settings.database_url)
    try:
        applied = await migrations.apply(conn, migrations.packaged())
    finally:
        await conn.close()
    print("applied: " + ", ".join(applied) if applied else "schema is up to date")


def main(argv: list[str] | None = None) -> None:
    if (argv := sys.argv[1:] if argv is None else argv)[:1] == ["pki"]:
        from engine.pki_cli import main as pki_main

        sys.exit(pki_main(argv[1:]))
    command, settings = _parse(argv)
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from engine.adapters.migrations import MigrationError

    try:
        if command == "migrate":
            asyncio.run(_migrate(settings))
            return
        from aiohttp import web

        from engine.app import create_app

        web.run_app(create_app(settings), host=settings.host, port=settings.port, ssl_context=_https(settings),
                    print=None)  # fmt: skip
    except MigrationError as exc:
        # The schema and this engine do not match: serving would answer every call with a 500.
        sys.exit(f"engine: cannot start: {exc}")


if __name__ == "__main__":
    main()
