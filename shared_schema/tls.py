"""The TLS both sides speak: mutual TLS 1.2+ with the deployment's CA only (``engine pki``).

The agent serves with :func:`server_context` and accepts only clients presenting a certificate
of that CA (the engine's); the engine calls with :func:`client_context`, presenting its own and
checking the agent's certificate against the address it connects to.
"""

from __future__ import annotations

import asyncio.sslproto
import ssl
from pathlib import Path

# asyncio gives every TLS connection a 256 KiB read buffer (SSLProtocol.max_size).  The engine's
# monitoring keeps a connection open to every host: a thousand hosts cost 300 MiB that way
# (measured), and an agent serving 32 concurrent calls grew 8 MiB more than with one.  A TLS
# record is at most 16 KiB, so reading 16 KiB at a time loses nothing; 1,000 connections then
# take 67 MiB.
TLS_READ_BUFFER = 16 * 1024


def read_tls_records_at_a_time() -> None:
    """Make every asyncio TLS connection of this process, client or server, read 16 KiB at a
    time instead of 256 KiB; both daemons call it as they start."""
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


def server_context(cert: Path | str, key: Path | str, ca: Path | str) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving ``cert`` that requires a client certificate signed by ``ca``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=ca)  # this CA only, not the system's
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(cert: Path | str, key: Path | str, ca: Path | str) -> ssl.SSLContext:
    """A TLS 1.2+ client context presenting ``cert`` that trusts only ``ca`` and checks host names.

    The name checked is the one connected to: an IP address must be an IPAddress SAN of the
    server's certificate, a host name a DNSName.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=ca)  # this CA only, not the system's
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    return ctx
