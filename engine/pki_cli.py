"""``engine pki init|issue-engine|issue-host``: the deployment CA and its certificates (engine/pki.py).

Run on the engine host, as root, in this order::

    engine pki init                                   # ca.pem, ca.key
    engine pki issue-engine [--server-name NAME ...]  # engine.pem, engine.key
    engine pki issue-host NAME ADDRESS                # hosts/NAME.pem, hosts/NAME.key; once per host

Each command prints what it wrote and what to do next.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from engine import pki

# Where a hypervisor host keeps its files, and the settings that name them.
HOST_DIR = Path("/etc/hotplug-nic/pki")
AGENT_CERT, AGENT_KEY = HOST_DIR / "agent.pem", HOST_DIR / "agent.key"
# The engine's unit runs with DynamicUser=yes: it cannot read a root-only key, and gets the files
# from systemd's LoadCredential= under this directory instead.
ENGINE_CREDENTIALS = Path("/run/credentials/engine.service")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engine pki", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.add_argument(
            "--dir", type=Path, default=pki.DEFAULT_DIR, help=f"the PKI directory (default {pki.DEFAULT_DIR})"
        )
        return sub

    init = add("init", "create the deployment CA: DIR/ca.pem and DIR/ca.key")
    init.add_argument("--force", action="store_true", help="replace an existing CA (invalidates all it issued)")
    engine = add("issue-engine", "issue the engine's client certificate: DIR/engine.pem and DIR/engine.key")
    engine.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name or IP address the engine's HTTPS is reached at (repeatable); "
        "the certificate then also serves HTTPS",
    )
    host = add("issue-host", "issue a host's agent certificate: DIR/hosts/NAME.pem and DIR/hosts/NAME.key")
    host.add_argument("name", metavar="NAME", help="the host's name (the file name and the certificate's CN)")
    host.add_argument("address", metavar="ADDRESS", help="the IP address or DNS name the engine reaches the host at")
    return parser


def _wrote(cert: Path, key: Path, what: str) -> None:
    print(f"wrote {cert} ({what})")
    print(f"wrote {key} (its private key, mode 0600)")


def _init(args: argparse.Namespace) -> None:
    cert = pki.init_ca(args.dir, force=args.force)
    print(f"wrote {cert} (the CA certificate, valid 10 years: copy it to every host)")
    print(f"wrote {args.dir / pki.CA_KEY} (the CA's private key, mode 0600: it never leaves this machine)")
    if args.force:
        print("every certificate the previous CA issued is now refused: issue them all again")
    print()
    print("next:")
    print(f"  engine pki issue-engine --dir {args.dir}")
    print(f"  engine pki issue-host NAME ADDRESS --dir {args.dir}    (for each host)")


def _issue_engine(args: argparse.Namespace) -> None:
    names: list[str] = args.server_name
    cert, key = pki.issue(args.dir, "engine", server_names=names, client=True)
    what = "the engine's client certificate" + (f", also its HTTPS certificate for {', '.join(names)}" if names else "")
    _wrote(cert, key, what)
    ca = args.dir / pki.CA_CERT
    print()
    print("next: the engine's unit runs with DynamicUser=yes, so hand the files over as credentials;")
    print("in a drop-in (systemctl edit engine.service):")
    print("  [Service]")
    for name, source in (("ca.pem", ca), ("engine.pem", cert), ("engine.key", key)):
        print(f"  LoadCredential={name}:{source}")
    print("and in /etc/hotplug-nic/engine.toml, the certificate the engine presents to the agents:")
    print(f'  agent_cert = "{ENGINE_CREDENTIALS / "engine.pem"}"')
    print(f'  agent_key = "{ENGINE_CREDENTIALS / "engine.key"}"')
    print(f'  agent_ca = "{ENGINE_CREDENTIALS / "ca.pem"}"')
    if names:
        print("and, to serve the API over HTTPS with it:")
        print(f'  tls_cert = "{ENGINE_CREDENTIALS / "engine.pem"}"')
        print(f'  tls_key = "{ENGINE_CREDENTIALS / "engine.key"}"')


def _issue_host(args: argparse.Namespace) -> None:
    name: str = args.name
    address: str = args.address
    hosts = args.dir / pki.HOSTS
    cert, key = pki.issue(args.dir, name, server_names=[address], client=False, out_dir=hosts)
    _wrote(cert, key, f"host {name}'s agent certificate for {address}")
    try:
        remote = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        remote = address
    print()
    print(f"next: copy them to {name} ({address}), keeping the modes:")
    print(f"  ssh root@{address} install -d -m 0755 {HOST_DIR}")
    print(f"  scp -p {args.dir / pki.CA_CERT} root@{remote}:{HOST_DIR / 'ca.pem'}")
    print(f"  scp -p {cert} root@{remote}:{AGENT_CERT}")
    print(f"  scp -p {key} root@{remote}:{AGENT_KEY}")
    print("and in that host's /etc/hotplug-nic/vdsm-agent.toml:")
    print(f'  tls_cert = "{AGENT_CERT}"')
    print(f'  tls_key = "{AGENT_KEY}"')
    print(f'  tls_ca = "{HOST_DIR / "ca.pem"}"')
    print(f"The engine must reach this host at {address}: the certificate names that address and no other.")


def main(argv: list[str]) -> int:
    """Run ``engine pki ARGV``; 0 on success, 1 on a refusal or error, 2 on a usage error."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    command = {"init": _init, "issue-engine": _issue_engine, "issue-host": _issue_host}[args.command]
    try:
        command(args)
    except (pki.PKIError, OSError) as exc:
        print(f"engine pki {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0
