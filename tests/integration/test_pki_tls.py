"""Mutual TLS over loopback with engine/pki.py's contexts: an aiohttp server with an agent's
certificate for 127.0.0.1 (``server_context``) and aiohttp clients (``client_context``).

A refused client learns little (the server just closes the connection), so the server's own
reason is read too: asyncio logs a failed TLS handshake, with the exception, in debug mode.
Every case runs with TLS 1.3 (the client certificate is checked after the client's handshake
has completed) and with TLS 1.2 (it is checked within the handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from engine import pki

Pair = tuple[Path, Path]  # (certificate, key)


@dataclass(frozen=True)
class Certs:
    ca: Path
    engine: Pair  # client certificate of the deployment CA
    host: Pair  # agent certificate for 127.0.0.1
    host_elsewhere: Pair  # agent certificate for 192.0.2.9 (TEST-NET-1), not the address connected to
    stranger: Pair  # client certificate of another CA
    stranger_host: Pair  # agent certificate for 127.0.0.1 of another CA
    expired: Pair  # client certificate of the deployment CA that expired 9 days ago


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    ours, theirs = tmp_path_factory.mktemp("pki"), tmp_path_factory.mktemp("other-pki")
    ca = pki.init_ca(ours)
    pki.init_ca(theirs, name="another CA")
    ten_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    return Certs(
        ca=ca,
        engine=pki.issue(ours, "engine", client=True),
        host=pki.issue(ours, "hv1", server_names=["127.0.0.1"], client=False, out_dir=ours / "hosts"),
        host_elsewhere=pki.issue(ours, "hv9", server_names=["192.0.2.9"], client=False, out_dir=ours / "hosts"),
        stranger=pki.issue(theirs, "engine", client=True),
        stranger_host=pki.issue(theirs, "hv1", server_names=["127.0.0.1"], client=False),
        expired=pki.issue(ours, "engine-expired", client=True, days=1, valid_from=ten_days_ago),
    )


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
def tls_version(request: pytest.FixtureRequest) -> ssl.TLSVersion:
    version: ssl.TLSVersion = request.param
    return version


@dataclass
class Server:
    url: str
    peers: list[str] = field(default_factory=list)  # the client certificate's CN of every request served


@contextlib.asynccontextmanager
async def serving(cert: Pair, ca: Path) -> AsyncIterator[Server]:
    """An aiohttp server on 127.0.0.1 with ``pki.server_context``; asyncio in debug mode meanwhile."""
    app = web.Application()
    server = Server(url="")

    async def hello(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(rdn[0] for rdn in peer["subject"]) if peer else {}
        server.peers.append(subject.get("commonName", ""))
        return web.Response(text="hello")

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(True)  # so that asyncio logs why a TLS handshake failed
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context(*cert, ca))
        await site.start()
        server.url = f"https://127.0.0.1:{runner.addresses[0][1]}/"
        yield server
    finally:
        await runner.cleanup()
        loop.set_debug(debug)


async def get(url: str, ctx: ssl.SSLContext, version: ssl.TLSVersion) -> str:
    ctx.maximum_version = version
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx) as response:
        assert response.status == 200
        return await response.text()


def server_refusals(caplog: pytest.LogCaptureFixture) -> set[str]:
    """Why the server's TLS handshakes failed: the verification message, or OpenSSL's reason."""
    found = set()
    for record in caplog.records:
        exc = record.exc_info[1] if record.exc_info else None
        if record.name == "asyncio" and isinstance(exc, ssl.SSLError):
            found.add(getattr(exc, "verify_message", None) or str(exc.reason))
    return found


@pytest.fixture(autouse=True)
def _asyncio_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")


async def test_the_engine_certificate_is_accepted(
    certs: Certs, tls_version: ssl.TLSVersion, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(certs.host, certs.ca) as server:
        assert await get(server.url, pki.client_context(*certs.engine, certs.ca), tls_version) == "hello"
    assert server.peers == ["engine"]  # the server saw who the client is
    assert server_refusals(caplog) == set()


async def test_a_client_without_certificate_is_refused(
    certs: Certs, tls_version: ssl.TLSVersion, caplog: pytest.LogCaptureFixture
) -> None:
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(cafile=certs.ca)  # it trusts the server: only its own identity is missing
    async with serving(certs.host, certs.ca) as server:
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(server.url, anonymous, tls_version)
    assert server.peers == []
    assert server_refusals(caplog) == {"PEER_DID_NOT_RETURN_A_CERTIFICATE"}


async def test_a_client_certificate_of_another_ca_is_refused(
    certs: Certs, tls_version: ssl.TLSVersion, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(certs.host, certs.ca) as server:
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(server.url, pki.client_context(*certs.stranger, certs.ca), tls_version)
    assert server.peers == []
    assert server_refusals(caplog) == {"unable to get local issuer certificate"}


async def test_an_expired_client_certificate_is_refused(
    certs: Certs, tls_version: ssl.TLSVersion, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(certs.host, certs.ca) as server:
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(server.url, pki.client_context(*certs.expired, certs.ca), tls_version)
    assert server.peers == []
    assert server_refusals(caplog) == {"certificate has expired"}


async def test_a_host_certificate_is_no_client_certificate(
    certs: Certs, tls_version: ssl.TLSVersion, caplog: pytest.LogCaptureFixture
) -> None:
    """One agent cannot call another: its certificate is for serverAuth only."""
    async with serving(certs.host, certs.ca) as server:
        with pytest.raises(aiohttp.ClientConnectionError):
            await get(server.url, pki.client_context(*certs.host, certs.ca), tls_version)
    assert server.peers == []
    assert server_refusals(caplog) == {"unsuitable certificate purpose"}


async def test_the_engine_refuses_a_server_certificate_for_another_address(
    certs: Certs, tls_version: ssl.TLSVersion
) -> None:
    async with serving(certs.host_elsewhere, certs.ca) as server:
        with pytest.raises(aiohttp.ClientConnectorCertificateError) as refused:
            await get(server.url, pki.client_context(*certs.engine, certs.ca), tls_version)
        assert server.peers == []
        error = refused.value.certificate_error
        assert isinstance(error, ssl.SSLCertVerificationError)
        assert error.verify_message == "IP address mismatch, certificate is not valid for '127.0.0.1'."
        # Nothing else is wrong with that certificate: without the name check it would be accepted.
        unchecked = pki.client_context(*certs.engine, certs.ca)
        unchecked.check_hostname = False
        assert await get(server.url, unchecked, tls_version) == "hello"


async def test_the_engine_refuses_a_server_certificate_of_another_ca(certs: Certs, tls_version: ssl.TLSVersion) -> None:
    async with serving(certs.stranger_host, certs.ca) as server:
        with pytest.raises(aiohttp.ClientConnectorCertificateError) as refused:
            await get(server.url, pki.client_context(*certs.engine, certs.ca), tls_version)
    assert server.peers == []
    error = refused.value.certificate_error
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert error.verify_message == "unable to get local issuer certificate"
