"""The deployment PKI for mutual TLS between the engine and its agents, as VDSM does it.

One certificate authority per deployment signs every certificate; the agents serve TLS with a
certificate naming the address the engine reaches them at, and accept only clients presenting a
certificate of the same CA; the engine presents its client certificate and checks the agent's
certificate against the host's address (an IP address SAN when the host is known by address)::

    /etc/hotplug-nic/pki/               on the engine host (created by ``engine pki ...``)
    ├── ca.pem          0644   the CA certificate: copied to every host
    ├── ca.key          0600   the CA's private key: stays on the engine host, nowhere else
    ├── engine.pem      0644   the engine's client certificate (clientAuth); issued with server
    ├── engine.key      0600     names it is also the engine's HTTPS server certificate (serverAuth)
    └── hosts/
        ├── <name>.pem  0644   one per host: CN=<name>, SAN = the host's address (serverAuth)
        └── <name>.key  0600

    /etc/hotplug-nic/pki/               on each hypervisor host
    ├── ca.pem          0644   the same CA certificate
    ├── agent.pem       0644   ← hosts/<name>.pem
    └── agent.key       0600   ← hosts/<name>.key

Every key is EC P-256 and every signature ECDSA with SHA-256.  Private keys are written
unencrypted with mode 0600 (as VDSM's are): file permissions protect them.  Files are written
to a temporary name then renamed, so a reader never sees half a key, and a key file is never
readable by others, not even for a moment.

These are plain functions over paths; nothing happens at import.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared_schema import tls

DEFAULT_DIR = Path("/etc/hotplug-nic/pki")
CA_CERT = "ca.pem"
CA_KEY = "ca.key"
HOSTS = "hosts"  # the hosts' certificates, under the CA's directory

# A certificate's file name: letters, digits, '.', '_', '-'; not starting with '.' (no '..',
# no hidden files), no path separator.  'ca' is the CA's own files.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# Certificates start a little in the past, so a host whose clock is slightly behind accepts them.
_CLOCK_SKEW = dt.timedelta(minutes=5)


class PKIError(ValueError):
    """A name is refused, the CA is missing or would be overwritten."""


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name) or ".." in name:
        raise PKIError(f"bad certificate name {name!r}: letters, digits, '.', '_', '-', not starting with '.'")
    if name == "ca":
        raise PKIError("'ca' is the CA's own name: choose another")
    return name


def _general_name(name: str) -> x509.GeneralName:
    """An IP address becomes an IPAddress SAN, anything else a DNSName (checked to be a host name)."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    labels = name.split(".")
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise PKIError(f"bad server name {name!r}: neither an IP address nor a DNS name")
    return x509.DNSName(name.lower())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` (whatever the umask), atomically."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def _days(days: int) -> dt.timedelta:
    if days <= 0:
        raise PKIError(f"days must be positive, got {days}")
    return dt.timedelta(days=days)


def init_ca(directory: Path | str, name: str = "hotplug-nic CA", days: int = 3650, *, force: bool = False) -> Path:
    """Create the CA in ``directory``: ``ca.key`` (0600) and self-signed ``ca.pem`` (0644).

    Refuses (PKIError) when either file exists, unless ``force``: a new CA invalidates every
    certificate issued by the old one.  Returns the path of ``ca.pem``.
    """
    directory = Path(directory)
    lifetime = _days(days)
    if not name.strip():
        raise PKIError("the CA needs a name")
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    existing = [p for p in (cert_path, key_path) if p.exists()]
    if existing and not force:
        raise PKIError(
            f"a CA already exists in {directory} ({', '.join(p.name for p in existing)}); "
            "replacing it invalidates every certificate it issued (force=True; engine pki init --force)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_cn(name))
        .issuer_name(_cn(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.exists() or not key_path.exists():
        raise PKIError(f"no CA in {directory} (needs {CA_CERT} and {CA_KEY}): create it first (engine pki init)")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise PKIError(f"{key_path} is not the key of {cert_path}")
    return cert, key


def issue(
    directory: Path | str,
    name: str,
    *,
    server_names: Sequence[str] = (),
    client: bool,
    days: int = 825,
    out_dir: Path | str | None = None,
    valid_from: dt.datetime | None = None,
) -> tuple[Path, Path]:
    """Issue ``<name>.pem`` (0644) and ``<name>.key`` (0600), signed by the CA in ``directory``.

    CN=``name``; subjectAltName lists ``server_names`` (an IP address as an IPAddress, anything
    else as a DNSName); extendedKeyUsage has serverAuth when there are server names, clientAuth
    when ``client``.  The files go to ``out_dir`` (default: ``directory``); an existing pair of
    that name is replaced (a renewal gets a fresh key).  ``valid_from`` moves the start of the
    validity (default: now), for tests that need an expired certificate.  Returns (cert, key).
    """
    directory = Path(directory)
    target = directory if out_dir is None else Path(out_dir)
    _check_name(name)
    lifetime = _days(days)
    sans = [_general_name(n) for n in server_names]
    if not sans and not client:
        raise PKIError(f"{name}: a certificate needs server names, or client=True, or both")
    ca_cert, ca_key = _load_ca(directory)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if sans else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    key = _new_key()
    start = dt.datetime.now(dt.UTC) if valid_from is None else valid_from
    builder = (
        x509.CertificateBuilder()
        .subject_name(_cn(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _CLOCK_SKEW)
        .not_valid_after(start + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    target.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = target / f"{name}.pem", target / f"{name}.key"
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


# The TLS contexts live in shared_schema (the agent serves with one, the engine calls with the
# other); re-exported here beside the certificates they load.
server_context = tls.server_context
client_context = tls.client_context
