"""``make run`` / ``make stop``: the whole stack on one machine, for trying it out.

``python -m devtools.run`` brings up, in order: the database (``DATABASE_URL`` or a private
cluster under ``.run/pgdata``), the schema, the demo bridge, the demo VM (the tiny guest), the
agent and the engine; prints where they answer; and on Ctrl-C or SIGTERM stops what it started.
``python -m devtools.run stop`` stops a run left in the background.  System daemons (libvirtd,
virtlogd) are started by ``scripts/ensure-host.sh`` and left running: they belong to the host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jsonrpcclient

from devtools import guest, netdev
from devtools.pg import Cluster

PROJECT = Path(__file__).resolve().parents[1]
RUN_DIR = PROJECT / ".run"
STATE = RUN_DIR / "state.json"
DEMO_BRIDGE = "hpbr-demo"
DEMO_VM = "hotplug-demo"
AGENT_LISTEN = os.environ.get("AGENT_LISTEN", "127.0.0.1:54321")
ENGINE_LISTEN = os.environ.get("ENGINE_LISTEN", "127.0.0.1:8080")
LIBVIRT_URI = os.environ.get("LIBVIRT_URI", "qemu:///system")


def _log(message: str) -> None:
    print(f"make run: {message}", flush=True)


def _save(state: dict[str, object]) -> None:
    STATE.write_text(json.dumps(state))


def _ours(pid: int, marker: str) -> bool:
    """True when ``pid`` still is the process we started (pids get reused)."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _wait_http(url: str, body: bytes | None, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2]} exited with status {proc.returncode}; see {RUN_DIR}")
        try:
            headers = {"Content-Type": "application/json"}
            with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=2):
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
    cluster = Cluster(RUN_DIR / "pgdata")
    cluster.init()
    if cluster.start():
        state["postgres"] = str(cluster.datadir)
        _save(state)
    cluster.ensure_database("engine")
    _log(f"database: private PostgreSQL cluster in {cluster.datadir}")
    return cluster.url("engine")


def _rpc(method: str, **params: object) -> object:
    """One JSON-RPC call to the agent this run started; its result, or RuntimeError with its message."""
    body = json.dumps(jsonrpcclient.request(method, params=params)).encode()
    request = urllib.request.Request(f"http://{AGENT_LISTEN}/jsonrpc", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        answer = jsonrpcclient.parse(json.loads(resp.read()))
    if isinstance(answer, jsonrpcclient.Error):
        raise RuntimeError(f"agent: {method}: {answer.message}")
    return answer.result


def _demo_vm(state: dict[str, object]) -> str:
    """Start the demo VM through the agent's VM.create (unless it runs); return its id."""
    console = RUN_DIR / "demo-console.log"
    spec = guest.spec(DEMO_VM, console)
    running = _rpc("Host.getAllVmStats")
    if isinstance(running, list) and any(vm["vmId"] == spec.vm_id for vm in running):
        _log(f"demo VM {DEMO_VM} already running")
        return spec.vm_id
    console.unlink(missing_ok=True)
    _rpc("VM.create", **spec.to_params())
    state["vm"] = DEMO_VM
    _save(state)
    guest.wait_for_console(console, guest.READY_MARKER)
    _log(f"demo VM {DEMO_VM} booted (serial console: {console})")
    return spec.vm_id


def up() -> None:
    RUN_DIR.mkdir(exist_ok=True)
    state: dict[str, object] = {"run": os.getpid()}
    _save(state)
    (RUN_DIR / "run.pid").write_text(str(os.getpid()))
    database_url = _database(state)
    netdev.ensure_bridge(DEMO_BRIDGE)
    _log(f"bridge {DEMO_BRIDGE} (no IP address) is up")
    env = {**os.environ, "DATABASE_URL": database_url}
    agent = _spawn("vdsm_agent", ["--listen", AGENT_LISTEN, "--libvirt-uri", LIBVIRT_URI], env)
    state["agent"] = agent.pid
    engine = _spawn("engine", ["--listen", ENGINE_LISTEN], env)
    state["engine"] = engine.pid
    _save(state)
    ping = b'{"jsonrpc": "2.0", "method": "Host.ping", "id": 1}'
    _wait_http(f"http://{AGENT_LISTEN}/jsonrpc", ping, 30, agent)
    _wait_http(f"http://{ENGINE_LISTEN}/health", None, 30, engine)
    vm_id = _demo_vm(state)
    nic = {"type": "interface", "device": "bridge", "network": DEMO_BRIDGE, "macAddr": "52:54:00:de:00:01",
           "nicModel": "pv", "id": "demo1"}  # fmt: skip
    plug = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "VM.hotplugNic", "params": {"vmId": vm_id, "nic": nic}})
    print(
        "\nUp and running:\n"
        f"  engine          http://{ENGINE_LISTEN}/        (health: /health)\n"
        f"  agent JSON-RPC  http://{AGENT_LISTEN}/jsonrpc\n"
        f"  demo VM         {DEMO_VM} ({vm_id}) on {LIBVIRT_URI}, bridge {DEMO_BRIDGE}\n"
        f"  logs            {RUN_DIR}/*.log\n"
        f"Hot-plug a NIC into the demo VM through the agent:\n"
        f"  curl -s http://{AGENT_LISTEN}/jsonrpc -H 'Content-Type: application/json' -d '{plug}'\n"
        "Ctrl-C stops everything this run started (or `make stop` from another shell).",
        flush=True,
    )


def down() -> None:
    """Stop what the state file says this run started, newest first."""
    if not STATE.exists():
        return
    state = json.loads(STATE.read_text())
    for name, marker in (("engine", "engine"), ("agent", "vdsm_agent")):
        pid = state.get(name)
        if isinstance(pid, int) and _ours(pid, marker):
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not _ours(pid, marker):
                    break
                time.sleep(0.1)
            _log(f"stopped {name} (pid {pid})")
    if state.get("vm"):
        subprocess.run(["virsh", "-q", "-c", LIBVIRT_URI, "destroy", str(state["vm"])], capture_output=True)
        _log(f"stopped demo VM {state['vm']}")
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
