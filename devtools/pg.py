"""A private PostgreSQL cluster: created once in a folder, started and stopped on demand.

Used by ``make run`` (a cluster under ``.run/``, reused across runs) and by the integration
tests (a throwaway cluster per test session, fsync off).  ``initdb`` refuses to run as root,
so as root every server command runs as the ``postgres`` user; the cluster listens on a unix
socket only, so it never collides with another server's TCP port.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found is None:
        raise RuntimeError("PostgreSQL server binaries (initdb) are not installed")
    return Path(found).parent


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass(frozen=True)
class Cluster:
    datadir: Path
    port: int = 5432

    @property
    def socket_dir(self) -> Path:
        # Unix socket paths must stay under ~107 bytes: keep the socket in a short /tmp path.
        digest = hashlib.sha1(str(self.datadir.resolve()).encode()).hexdigest()[:10]
        return Path(f"/tmp/hotplug-pg-{digest}")

    @property
    def user(self) -> str:
        return "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            _as_server_user([str(_bindir() / args[0]), *args[1:]]),
            check=True,
            capture_output=True,
            text=True,
        )

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def init(self, *, durable: bool = True) -> None:
        """Create the cluster unless it exists.  ``durable=False`` turns fsync off (tests)."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self._own(self.datadir)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-A",
            "trust",
            "-U",
            self.user,
            "-E",
            "UTF8",
            "--no-instructions",
        )
        settings = [
            "listen_addresses = ''",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.socket_dir}'",
            "max_connections = 200",
        ]
        if not durable:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# hotplug-nic\n" + "\n".join(settings) + "\n")

    def running(self) -> bool:
        done = subprocess.run(
            _as_server_user([str(_bindir() / "pg_ctl"), "status", "-D", str(self.datadir)]),
            capture_output=True,
        )
        return done.returncode == 0

    def start(self) -> bool:
        """Start the server unless it runs; return True when this call started it."""
        if self.running():
            return False
        self._own(self.socket_dir)
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-D",
            str(self.datadir),
            "-l",
            str(self.datadir / "server.log"),
            "-o",
            "-c logging_collector=off",
        )
        return True

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.datadir))
        with contextlib.suppress(OSError):  # not left behind in /tmp by every throwaway cluster
            self.socket_dir.rmdir()  # only when empty: another server's socket keeps it

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user, name)
        return self.url(name)

    def ensure_database(self, name: str) -> str:
        try:
            return self.create_database(name)
        except subprocess.CalledProcessError as exc:
            if "already exists" not in exc.stderr:
                raise
            return self.url(name)
