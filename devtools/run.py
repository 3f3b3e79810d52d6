"""``make run`` / ``make stop``: the whole stack on one machine, for trying it out.

``python -m devtools.run`` brings up, in order: the database (``DATABASE_URL`` or a private
cluster in the checkout's state directory, see ``devtools/paths.py``), the schema, the demo
bridge, the demo VM (the tiny guest), the agent and the engine; prints where they answer; and
on Ctrl-C or SIGTERM stops what it started.
``python -m devtools.run stop`` stops a run left in the background.  System daemons (libvirtd,
virtlogd) are started by ``scripts/ensure-host.sh`` and left running: they belong to the host.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devtools import demo, guest, netdev, paths, tls
from devtools.pg import Cluster

PROJECT = Path(__file__).resolve().parents[1]
RUN_DIR = PROJECT / ".run"  # the user's own: logs, state.json, the admin password
STATE = RUN_DIR / "state.json"
DEMO_BRIDGE = "hpbr-demo"
DEMO_VM = "hotplug-demo"
AGENT_LISTEN = os.environ.get("AGENT_LISTEN", "127.0.0.1:54321")
ENGINE_LISTEN = os.environ.get("ENGINE_LISTEN", "127.0.0.1:8080")
# ENGINE_TLS_CERT / ENGINE_TLS_KEY in the environment make the engine serve HTTPS.
ENGINE_URL = f"{'https' if os.environ.get('ENGINE_TLS_CERT') else 'http'}://{ENGINE_LISTEN}"
LIBVIRT_URI = os.environ.get("LIBVIRT_URI", "qemu:///system")


def _log(message: str) -> None:
    print(f"make run: {message}", flush=True)


def _elapsed() -> float:
    """Seconds since ``make`` started (it exports HOTPLUG_MAKE_START), installs included."""
    try:
        return time.time() - float(os.environ["HOTPLUG_MAKE_START"])
    except (KeyError, ValueError):
        return time.time() - _STARTED


_STARTED = time.time()


def _save(state: dict[str, object]) -> None:
    STATE.write_text(json.dumps(state))


def _ours(pid: int, marker: str) -> bool:
    """True when ``pid`` still is the process we started (pids get reused)."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _wait_http(
    url: str, body: bytes | None, timeout: float, proc: subprocess.Popen[bytes], context: ssl.SSLContext | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2]} exited with status {proc.returncode}; see {RUN_DIR}")
        try:
            headers = {"Content-Type": "application/json"}
            with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=2, context=context):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _spawn(module: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (RUN_DIR / f"{module}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches us; we stop the children ourselves
    )


def _database(state: dict[str, object]) -> str:
    if os.environ.get("DATABASE_URL"):
        _log("database: DATABASE_URL")
        return os.environ["DATABASE_URL"]
    cluster = Cluster(paths.pgdata_dir())
    cluster.init()
    if cluster.start():
        state["postgres"] = str(cluster.datadir)
        _save(state)
    cluster.ensure_database("engine")
    _log(f"database: private PostgreSQL cluster in {cluster.datadir}")
    return cluster.url("engine")


def _admin_password() -> str:
    """ENGINE_ADMIN_PASSWORD, or one generated once for this checkout and kept in .run/."""
    if os.environ.get("ENGINE_ADMIN_PASSWORD"):
        return os.environ["ENGINE_ADMIN_PASSWORD"]
    stored = RUN_DIR / "admin-password"
    if not stored.exists():
        stored.write_text(secrets.token_urlsafe(12))
        stored.chmod(0o600)
    return stored.read_text().strip()


def up() -> None:
    RUN_DIR.mkdir(exist_ok=True)
    RUN_DIR.chmod(0o700)  # it holds the admin password
    paths.ensure()
    state: dict[str, object] = {"run": os.getpid()}
    _save(state)
    (RUN_DIR / "run.pid").write_text(str(os.getpid()))
    database_url = _database(state)
    netdev.ensure_bridge(DEMO_BRIDGE)
    _log(f"bridge {DEMO_BRIDGE} (no IP address) is up")
    password = _admin_password()
    run_pki = tls.ensure()  # mutual TLS between engine and agent, with a CA made for this checkout
    _log(f"PKI for engine <-> agent mutual TLS in {run_pki.directory}")
    env = {**os.environ, **run_pki.engine_env(), **run_pki.agent_env(), **guest.agent_env(),
           "DATABASE_URL": database_url, "ENGINE_ADMIN_PASSWORD": password}  # fmt: skip
    agent = _spawn("vdsm_agent", ["--listen", AGENT_LISTEN, "--libvirt-uri", LIBVIRT_URI], env)
    state["agent"] = agent.pid
    engine = _spawn("engine", ["--listen", ENGINE_LISTEN], env)
    state["engine"] = engine.pid
    _save(state)
    ping = b'{"jsonrpc": "2.0", "method": "Host.ping", "id": 1}'
    _wait_http(f"https://{AGENT_LISTEN}/jsonrpc", ping, 30, agent, run_pki.client_context())
    trust = ssl.create_default_context(cafile=str(run_pki.ca)) if ENGINE_URL.startswith("https") else None
    _wait_http(f"{ENGINE_URL}/health", None, 30, engine, trust)
    api = demo.Api(ENGINE_URL, password, trust)
    vm = demo.ensure_demo(api, AGENT_LISTEN, DEMO_BRIDGE, LIBVIRT_URI)
    state["vm"] = vm["id"]
    _save(state)
    _log(f"demo VM {DEMO_VM} is up (serial console: {guest.console_of(vm['id'])})")
    base = f"{ENGINE_URL}/ovirt-engine/api"
    print(
        "\nUp and running:\n"
        f"  admin page      {ENGINE_URL}/\n"
        f"  REST API        {base}   (also under /api; OpenAPI: {base}/openapi.json)\n"
        f"  login           admin@internal / {password}\n"
        f"  agent JSON-RPC  https://{AGENT_LISTEN}/jsonrpc (mutual TLS: only the engine's certificate is served)\n"
        f"  demo VM         {DEMO_VM} ({vm['id']}) on {LIBVIRT_URI}, network 'demo' on bridge {DEMO_BRIDGE}\n"
        f"  logs            {RUN_DIR}/*.log\n"
        f"  state           {paths.state_dir()} (database, guest, consoles; `make clean` removes it)\n"
        "Try it:\n"
        f"  TOKEN=$(curl -s -d grant_type=password -d scope=ovirt-app-api -d username=admin@internal "
        f"-d password={password} {ENGINE_URL}/ovirt-engine/sso/oauth/token | python3 -c "
        "'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' "
        "-H 'Accept: application/json' "
        f'-d \'{{"name": "nic2", "vnic_profile": {{"id": "{vm["profile_id"]}"}}}}\' {base}/vms/{vm["id"]}/nics\n'
        "The API answers XML by default, as oVirt's (Accept: application/json for JSON); the oVirt Python SDK "
        "works against it.\n"
        f"HTTPS instead of HTTP: ENGINE_TLS_CERT={run_pki.cert('engine')[0]} "
        f"ENGINE_TLS_KEY={run_pki.cert('engine')[1]} make run (trust {run_pki.ca}).\n"
        "Ctrl-C stops everything this run started (or `make stop` from another shell).",
        flush=True,
    )
    _log(f"up in {_elapsed():.1f} s")


def _stop_demo_vm(state: dict[str, object]) -> None:
    """Stop the demo VM through the engine, so that its database says 'down' too."""
    try:
        trust = ssl.create_default_context(cafile=str(tls.ensure().ca)) if ENGINE_URL.startswith("https") else None
        demo.Api(ENGINE_URL, _admin_password(), trust).call("POST", f"/vms/{state['vm']}/stop")
        _log("stopped the demo VM")
    except (OSError, RuntimeError) as exc:
        _log(f"could not stop the demo VM through the engine ({exc}); destroying it in libvirt")
        subprocess.run(["virsh", "-q", "-c", LIBVIRT_URI, "destroy", str(state["vm"])], capture_output=True)


def down() -> None:
    """Stop what the state file says this run started, newest first."""
    if not STATE.exists():
        return
    state = json.loads(STATE.read_text())
    if state.get("vm"):
        _stop_demo_vm(state)
    for name, marker in (("engine", "engine"), ("agent", "vdsm_agent")):
        pid = state.get(name)
        if isinstance(pid, int) and _ours(pid, marker):
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not _ours(pid, marker):
                    break
                time.sleep(0.1)
            _log(f"stopped {name} (pid {pid})")
    if state.get("postgres"):
        Cluster(Path(str(state["postgres"]))).stop()
        _log("stopped the private PostgreSQL cluster")
    STATE.unlink(missing_ok=True)
    (RUN_DIR / "run.pid").unlink(missing_ok=True)


def stop() -> None:
    pid_file = RUN_DIR / "run.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if _ours(pid, "devtools.run") and pid != os.getpid():
            os.kill(pid, signal.SIGTERM)  # the run cleans up after itself
            for _ in range(150):
                if not _ours(pid, "devtools.run"):
                    return
                time.sleep(0.1)
    down()


def main(argv: list[str]) -> None:
    if argv == ["stop"]:
        stop()
        return

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        up()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print()
    finally:
        down()


if __name__ == "__main__":
    main(sys.argv[1:])
