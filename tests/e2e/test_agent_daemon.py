"""The agent as a systemd service sees it: READY=1 once serving, a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from devtools import tls
from devtools.agent_proc import free_port


async def test_agent_notifies_ready_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    notify_path = f"/tmp/hpt-notify-{os.getpid()}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.setblocking(False)
    port = free_port()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "vdsm_agent", "--listen", f"127.0.0.1:{port}",
            env={**os.environ, **tls.ensure().agent_env(), "NOTIFY_SOCKET": notify_path},
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        ready = await asyncio.wait_for(loop.sock_recv(sock, 64), 30)
        assert ready == b"READY=1"
        # READY means serving: a connection succeeds right away.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(loop.sock_recv(sock, 64), 10) == b"STOPPING=1"
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
    finally:
        sock.close()
        os.unlink(notify_path)


async def test_agent_refuses_a_bad_config_with_a_clear_message(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text('hypervisor = "xen"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vdsm_agent", "--config", str(conf), stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"hypervisor must be one of libvirt, simulated, got 'xen'" in err
