"""The project works wherever a user puts it: a clone in a private (0700) directory, and a wheel
installed into a fresh virtual environment, run the way the units in deploy/ run it."""

from __future__ import annotations

import asyncio
import configparser
import os
import shlex
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from devtools import paths, tls
from devtools.agent_proc import free_port
from devtools.engine_proc import TOKEN_PATH

PROJECT = paths.PROJECT
DEPLOY = PROJECT / "deploy"


def _as(user: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True)


@pytest.fixture(scope="module")
def private_clone() -> Iterator[Path]:
    """A clone of this repository in a 0700 directory, as in root's home or ``mktemp -d``."""
    home = Path(tempfile.mkdtemp(prefix="hotplug-clone-"))
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    clone = home / "hotplug-nic"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    try:
        yield clone
    finally:
        # The clone's own code removes its state directory (and stops its database).
        _in_clone(clone, "from devtools import paths; paths.remove(paths.state_dir())")
        subprocess.run(["rm", "-rf", str(home)], check=True)


def _in_clone(clone: Path, code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(clone)}
    env.pop("HOTPLUG_STATE_DIR", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=clone, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="checks as the service users need root (runuser)")
def test_a_clone_in_a_private_directory_keeps_what_services_need_where_they_can_reach_it(
    private_clone: Path,
) -> None:
    state = Path(_in_clone(private_clone, "from devtools import paths; print(paths.ensure())"))
    assert not state.is_relative_to(private_clone.parent), "the state directory must leave the private folder"
    mode = stat.S_IMODE(state.stat().st_mode)
    assert mode & 0o006 == 0, f"{state} is readable or writable by everyone: {oct(mode)}"

    # The tiny guest, built by the clone's own code where QEMU (libvirt-qemu) must open it.
    guest_dir = Path(
        _in_clone(private_clone, "from devtools import guest; print(guest.ensure_built())").splitlines()[-1]
    )
    assert guest_dir.parent == state
    for name in ("vmlinuz", "initrd.img"):
        opened = _as("libvirt-qemu", "dd", f"if={guest_dir / name}", "of=/dev/null", "count=1")
        assert opened.returncode == 0, f"QEMU's user cannot read the guest's {name}: {opened.stderr}"
    consoles = Path(_in_clone(private_clone, "from devtools import paths; print(paths.consoles_dir())"))
    assert _as("libvirt-qemu", "test", "-x", str(consoles)).returncode == 0

    # make run's database: initdb, start and a query, as the postgres user, from the clone's code.
    answer = _in_clone(
        private_clone,
        "import subprocess\n"
        "from devtools import paths\n"
        "from devtools.pg import Cluster\n"
        "c = Cluster(paths.pgdata_dir(), port=5499)\n"
        "c.init(durable=False); c.start()\n"
        "try:\n"
        "    print(subprocess.run(['psql', c.url(), '-Atc', 'SELECT 6*7'], check=True,\n"
        "                         capture_output=True, text=True).stdout)\n"
        "finally:\n"
        "    c.stop()\n",
    )
    assert answer == "42"
    assert (state / "pgdata" / "PG_VERSION").exists()


@pytest.mark.skipif("HOTPLUG_STATE_DIR" in os.environ, reason="the state directory is set by hand")
def test_the_state_directory_is_per_checkout_and_pruned_when_its_checkout_is_gone(tmp_path: Path) -> None:
    gone = tmp_path / "deleted-clone"
    gone.mkdir()
    stale = paths.state_dir(gone)
    assert stale != paths.state_dir(PROJECT)
    stale.mkdir(parents=True)
    (stale / "checkout").write_text(str(gone.resolve()))
    gone.rmdir()
    paths.ensure()
    assert not stale.exists()
    assert (paths.state_dir() / "checkout").read_text() == str(PROJECT)


# --- the wheel, installed as deploy/ expects it ---------------------------------------------


@pytest.fixture(scope="module")
def installed_venv() -> Iterator[Path]:
    """``pip install <the wheel>`` into a fresh venv: no source tree, no editable install."""
    work = Path(tempfile.mkdtemp(prefix="hotplug-wheel-"))
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w",
             str(work / "dist"), str(PROJECT)],
            check=True, capture_output=True, cwd=work,
        )  # fmt: skip
        wheel = next((work / "dist").glob("hotplug_nic-*.whl"))
        venv = work / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
            check=True, capture_output=True, cwd=work,
        )  # fmt: skip
        yield venv
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=True)


def _exec_lines(unit: str) -> list[list[str]]:
    """ExecStartPre / ExecStart of a shipped unit, as argument lists."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(DEPLOY / unit)
    service = parser["Service"]
    return [shlex.split(service[key]) for key in ("ExecStartPre", "ExecStart") if key in service]


def _as_installed(argv: list[str], venv: Path, etc: Path) -> list[str]:
    """The unit's command with /opt/hotplug-nic/.venv and /etc/hotplug-nic/ moved to the test's."""
    moved = [a.replace("/opt/hotplug-nic/.venv", str(venv)).replace("/etc/hotplug-nic", str(etc)) for a in argv]
    assert Path(moved[0]).is_file(), f"the unit runs {argv[0]}, which the wheel does not install"
    return moved


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _wait(session: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process, **kw: object) -> None:
    for _ in range(150):
        assert proc.returncode is None, f"{url}: the daemon exited with {proc.returncode}"
        try:
            async with session.post(url, **kw) if kw else session.get(url) as resp:  # type: ignore[arg-type]
                if resp.status < 500:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


async def test_the_wheel_runs_as_the_units_run_it(
    installed_venv: Path, database_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    for config in ("engine.toml", "vdsm-agent.toml"):
        (etc / config).write_text((DEPLOY / config).read_text())
    engine_port, agent_port = free_port(), free_port()
    run_pki = tls.ensure()  # what `engine pki` makes for a deployment
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url,  # what /etc/hotplug-nic/engine.env holds
        "ENGINE_ADMIN_PASSWORD": "wheel-secret",
        "ENGINE_LISTEN": f"127.0.0.1:{engine_port}",
        "VDSM_AGENT_LISTEN": f"127.0.0.1:{agent_port}",
        **run_pki.engine_env(),
        **run_pki.agent_env(),
    }
    migrate, serve = (_as_installed(a, installed_venv, etc) for a in _exec_lines("engine.service"))
    (agent_cmd,) = (_as_installed(a, installed_venv, etc) for a in _exec_lines("vdsm-agent.service"))

    # Run from / so nothing can be imported from this checkout.
    migrated = subprocess.run(migrate, env=env, cwd="/", capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied: 0001_initial.sql" in migrated.stdout

    engine = await asyncio.create_subprocess_exec(*serve, env=env, cwd="/", stderr=asyncio.subprocess.PIPE)
    agent = await asyncio.create_subprocess_exec(*agent_cmd, env=env, cwd="/", stderr=asyncio.subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{engine_port}"
        await _wait(http, base + "/health", engine)
        form = {"grant_type": "password", "scope": "ovirt-app-api", "username": "admin@internal",
                "password": "wheel-secret"}  # fmt: skip
        async with http.post(base + TOKEN_PATH, data=form) as resp:
            assert resp.status == 200, await resp.text()
            token = (await resp.json())["access_token"]
        async with http.get(base + "/ovirt-engine/api/vms", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
            assert (await resp.text()).endswith("<vms/>")  # XML, as oVirt answers by default
        ping = {"jsonrpc": "2.0", "method": "Host.ping", "id": 1}
        url = f"https://127.0.0.1:{agent_port}/jsonrpc"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=run_pki.client_context())) as as_engine:
            await _wait(as_engine, url, agent, json=ping)
            async with as_engine.post(url, json=ping) as resp:
                assert "result" in await resp.json()
    finally:
        for proc in (engine, agent):
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 15)


async def test_the_installed_engine_refuses_a_database_migrated_by_a_newer_engine(
    installed_venv: Path, migrated_database_url: str
) -> None:
    import asyncpg

    conn = await asyncpg.connect(migrated_database_url)
    try:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ('9999', '9999_from_the_future.sql', 'x')"
        )
    finally:
        await conn.close()
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": migrated_database_url, "ENGINE_ADMIN_PASSWORD": "x",
           "ENGINE_LISTEN": f"127.0.0.1:{free_port()}", **tls.ensure().engine_env()}  # fmt: skip
    for command in ("migrate", "serve"):
        done = subprocess.run(
            [str(installed_venv / "bin" / "engine"), command], env=env, cwd="/", capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode != 0
        assert "9999_from_the_future.sql" in done.stderr and "newer engine" in done.stderr
