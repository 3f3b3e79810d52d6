"""Test hosts in network namespaces on a bridge, exchanging raw Ethernet frames.

Only raw frames with the local experimental EtherType 0x88B5 between namespaces this test
creates: no IP address is configured and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

ETHERTYPE = 0x88B5
ETH_P_ALL = 0x0003

_SEND = """
import socket, sys
dev, dst, src, marker, count = sys.argv[1:6]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
frame = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + bytes([0x88, 0xB5])
for i in range(int(count)):
    s.send(frame + f"{marker}-{i}".encode().ljust(46, b"."))
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass(frozen=True)
class NsHost:
    netns: str
    dev: str  # inside the namespace
    mac: str

    def send(self, dst_mac: str, marker: str, count: int = 5) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.netns, sys.executable, "-c", _SEND, self.dev, dst_mac, self.mac, marker,
             str(count)],
            check=True,
        )  # fmt: skip


def add_host(bridge: str, name: str, mac: str) -> NsHost:
    """Namespace ``name`` with one veth end (MAC ``mac``) inside, the other on ``bridge``."""
    remove_host(name)
    _ip("netns", "add", name)
    _ip("link", "add", f"{name}-br", "type", "veth", "peer", "name", f"{name}-in")
    _ip("link", "set", f"{name}-in", "netns", name)
    _ip("-n", name, "link", "set", f"{name}-in", "address", mac, "up")
    _ip("link", "set", f"{name}-br", "master", bridge, "up")
    return NsHost(name, f"{name}-in", mac)


def remove_host(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "link", "del", f"{name}-br"], capture_output=True)


class Capture:
    """Every frame seen on a host device (both directions), from now on."""

    def __init__(self, dev: str):
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.bind((dev, 0))
        self._sock.settimeout(0.2)

    def markers(self, prefix: str, wait: float = 1.5) -> set[str]:
        found: set[str] = set()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                frame = self._sock.recv(2048)
            except TimeoutError:
                continue
            if int.from_bytes(frame[12:14], "big") == ETHERTYPE:
                payload = frame[14:].rstrip(b".").decode(errors="replace")
                if payload.startswith(prefix):
                    found.add(payload)
        return found

    def close(self) -> None:
        self._sock.close()


async def seen(sender: NsHost, receiver: NsHost, marker: str, *taps: str) -> list[set[str]]:
    """What each tap sees of 5 raw frames ``sender`` sends to ``receiver``.  The receiver speaks
    first so the bridge learns where it is: the frames then go to its port only, never flooded
    to the VM's ports; a tap sees them only if it mirrors the sender's port."""
    await asyncio.to_thread(receiver.send, sender.mac, f"HELLO-{marker}", 3)
    captures = [Capture(tap) for tap in taps]
    try:
        await asyncio.to_thread(sender.send, receiver.mac, marker, 5)
        return [await asyncio.to_thread(c.markers, marker) for c in captures]
    finally:
        for c in captures:
            c.close()
