"""engine/pki.py and `engine pki`: the CA and the certificates it issues, checked with `cryptography`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine import pki, pki_cli
from engine.__main__ import main as engine_main


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _ekus(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _sans(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    pki.init_ca(directory)
    return directory


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Modes must not depend on the umask: with none at all, files would otherwise be 0666."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_init_ca_writes_a_self_signed_ca_with_private_key_0600(tmp_path: Path, no_umask: None) -> None:
    path = pki.init_ca(tmp_path / "pki", name="Test CA")
    assert path == tmp_path / "pki" / "ca.pem"
    ca = _cert(path)
    assert _cn(ca) == "Test CA" and ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    key = serialization.load_pem_private_key((tmp_path / "pki" / "ca.key").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key() == ca.public_key()
    assert _mode(tmp_path / "pki" / "ca.key") == 0o600
    assert _mode(path) == 0o644
    lifetime = ca.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=3649) < lifetime <= dt.timedelta(days=3650)
    assert sorted(p.name for p in (tmp_path / "pki").iterdir()) == ["ca.key", "ca.pem"]  # no temporary left


def test_init_ca_refuses_to_overwrite_unless_forced(ca_dir: Path) -> None:
    before = (ca_dir / "ca.pem").read_bytes(), (ca_dir / "ca.key").read_bytes()
    with pytest.raises(pki.PKIError, match="already exists"):
        pki.init_ca(ca_dir)
    assert ((ca_dir / "ca.pem").read_bytes(), (ca_dir / "ca.key").read_bytes()) == before
    pki.init_ca(ca_dir, force=True)
    assert (ca_dir / "ca.pem").read_bytes() != before[0] and (ca_dir / "ca.key").read_bytes() != before[1]


def test_init_ca_refuses_when_only_the_key_is_left(tmp_path: Path) -> None:
    (tmp_path / "ca.key").write_text("a key of an earlier CA")
    with pytest.raises(pki.PKIError, match=r"ca\.key"):
        pki.init_ca(tmp_path)
    assert not (tmp_path / "ca.pem").exists()


def test_host_certificate_names_the_host_address_for_server_auth(ca_dir: Path, no_umask: None) -> None:
    cert_path, key_path = pki.issue(ca_dir, "hv1", server_names=["192.0.2.10"], client=False, out_dir=ca_dir / "hosts")
    assert (cert_path, key_path) == (ca_dir / "hosts" / "hv1.pem", ca_dir / "hosts" / "hv1.key")
    ca, cert = _cert(ca_dir / "ca.pem"), _cert(cert_path)
    cert.verify_directly_issued_by(ca)
    assert cert.issuer == ca.subject and _cn(cert) == "hv1"
    sans = _sans(cert)
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10")]
    assert sans.get_values_for_type(x509.DNSName) == []
    assert _ekus(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.public_key() == cert.public_key()
    assert _mode(key_path) == 0o600 and _mode(cert_path) == 0o644
    lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=824) < lifetime <= dt.timedelta(days=825)


def test_engine_certificate_for_client_and_server_auth(ca_dir: Path) -> None:
    cert_path, key_path = pki.issue(ca_dir, "engine", server_names=["Engine.Example", "10.0.0.1", "::1"], client=True)
    assert (cert_path, key_path) == (ca_dir / "engine.pem", ca_dir / "engine.key")
    cert = _cert(cert_path)
    cert.verify_directly_issued_by(_cert(ca_dir / "ca.pem"))
    sans = _sans(cert)
    assert sans.get_values_for_type(x509.DNSName) == ["engine.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("::1")]
    assert _ekus(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert _mode(key_path) == 0o600


def test_client_only_certificate_has_no_server_names(ca_dir: Path) -> None:
    cert = _cert(pki.issue(ca_dir, "engine", client=True)[0])
    assert _ekus(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    with pytest.raises(x509.ExtensionNotFound):
        _sans(cert)


def test_a_certificate_of_another_ca_does_not_verify(ca_dir: Path, tmp_path: Path) -> None:
    pki.init_ca(tmp_path / "other")
    stranger = _cert(pki.issue(tmp_path / "other", "engine", client=True)[0])
    with pytest.raises((InvalidSignature, ValueError)):
        stranger.verify_directly_issued_by(_cert(ca_dir / "ca.pem"))


def test_reissuing_replaces_the_pair_with_a_fresh_key(ca_dir: Path) -> None:
    first = pki.issue(ca_dir, "engine", client=True)[1].read_bytes()
    assert pki.issue(ca_dir, "engine", client=True)[1].read_bytes() != first


def test_valid_from_in_the_past_makes_an_expired_certificate(ca_dir: Path) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    cert = _cert(pki.issue(ca_dir, "old", client=True, days=1, valid_from=past)[0])
    assert cert.not_valid_after_utc < dt.datetime.now(dt.UTC)


@pytest.mark.parametrize("name", ["../evil", "a/b", "/etc/passwd", "..", "a..b", ".hidden", "", "a b", "a\\b", "ca"])
def test_bad_names_are_refused_and_nothing_is_written(ca_dir: Path, name: str) -> None:
    before = sorted(ca_dir.parent.rglob("*"))
    with pytest.raises(pki.PKIError):
        pki.issue(ca_dir, name, server_names=["192.0.2.10"], client=False)
    assert sorted(ca_dir.parent.rglob("*")) == before


@pytest.mark.parametrize("server_name", ["bad name", "-x.example", "a..b", "", "x" * 64 + ".example", "a/b"])
def test_bad_server_names_are_refused(ca_dir: Path, server_name: str) -> None:
    with pytest.raises(pki.PKIError, match="bad server name"):
        pki.issue(ca_dir, "hv1", server_names=[server_name], client=False)
    assert not (ca_dir / "hv1.pem").exists()


def test_issue_needs_a_ca_a_purpose_and_a_positive_lifetime(tmp_path: Path, ca_dir: Path) -> None:
    with pytest.raises(pki.PKIError, match="no CA"):
        pki.issue(tmp_path / "empty", "engine", client=True)
    with pytest.raises(pki.PKIError, match="server names, or client"):
        pki.issue(ca_dir, "nothing", client=False)
    with pytest.raises(pki.PKIError, match="positive"):
        pki.issue(ca_dir, "engine", client=True, days=0)


def test_contexts_require_certificates_tls12_and_hostname_checks(ca_dir: Path) -> None:
    engine = pki.issue(ca_dir, "engine", client=True)
    host = pki.issue(ca_dir, "hv1", server_names=["127.0.0.1"], client=False)
    server = pki.server_context(*host, ca_dir / "ca.pem")
    assert server.verify_mode == ssl.CERT_REQUIRED and server.minimum_version == ssl.TLSVersion.TLSv1_2
    client = pki.client_context(*engine, ca_dir / "ca.pem")
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname
    assert client.minimum_version == ssl.TLSVersion.TLSv1_2
    # Only the deployment CA is trusted, not the system's authorities.
    assert [c["subject"] for c in client.get_ca_certs()] == [((("commonName", "hotplug-nic CA"),),)]
    assert [c["subject"] for c in server.get_ca_certs()] == [((("commonName", "hotplug-nic CA"),),)]


def test_cli_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "pki"
    assert pki_cli.main(["init", "--dir", str(directory)]) == 0
    assert f"wrote {directory / 'ca.pem'}" in capsys.readouterr().out
    assert pki_cli.main(["init", "--dir", str(directory)]) == 1
    assert "already exists" in capsys.readouterr().err

    assert pki_cli.main(["issue-engine", "--dir", str(directory), "--server-name", "engine.example"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {directory / 'engine.key'}" in out and "LoadCredential=engine.key:" in out
    assert _sans(_cert(directory / "engine.pem")).get_values_for_type(x509.DNSName) == ["engine.example"]

    assert pki_cli.main(["issue-host", "hv1", "192.0.2.10", "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {directory / 'hosts' / 'hv1.pem'}" in out
    assert f"{directory / 'hosts' / 'hv1.key'} root@192.0.2.10:/etc/hotplug-nic/pki/agent.key" in out
    cert = _cert(directory / "hosts" / "hv1.pem")
    assert _cn(cert) == "hv1"
    assert _sans(cert).get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10")]

    assert pki_cli.main(["issue-host", "../hv2", "192.0.2.11", "--dir", str(directory)]) == 1
    assert "bad certificate name" in capsys.readouterr().err
    assert pki_cli.main(["issue-host", "hv2", "--dir", str(directory)]) == 2  # ADDRESS missing
    assert pki_cli.main([]) == 2


def test_engine_command_routes_pki(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        engine_main(["pki", "init", "--dir", str(tmp_path / "pki")])
    assert exit_.value.code == 0
    assert (tmp_path / "pki" / "ca.pem").exists()
    with pytest.raises(SystemExit) as exit_:
        engine_main(["pki", "init", "--dir", str(tmp_path / "pki")])
    assert exit_.value.code == 1
