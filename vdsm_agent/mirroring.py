"""Port mirroring (the seed's ``promisc``): copy all traffic of some bridges to a VM's tap.

Frames forwarded between two ports of a Linux bridge never pass the bridge device's own
traffic-control hooks, so each port of a mirrored bridge gets an ``ingress`` qdisc and a
match-all u32 filter with ``action mirred egress mirror dev <tap>``: every frame entering
the bridge is copied to the tap.  Filters are remembered per tap (device, preference) so
that unplug removes exactly what plug added.  Ports joining a bridge later are not mirrored.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path

_SYS_NET = Path("/sys/class/net")


class MirrorError(Exception):
    pass


async def _tc(*args: str) -> tuple[int, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "tc", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise MirrorError(f"cannot run tc: {exc}") from None
    _, err = await proc.communicate()
    return proc.returncode or 0, err.decode(errors="replace").strip()


def bridge_ports(bridge: str) -> list[str]:
    try:
        return sorted(p.name for p in (_SYS_NET / bridge / "brif").iterdir())
    except OSError:
        raise MirrorError(f"network bridge {bridge!r} does not exist on this host") from None


class PortMirror:
    def __init__(self) -> None:
        self._filters: dict[str, list[tuple[str, int]]] = {}  # tap -> [(port, pref)]
        self._prefs = itertools.count(40000)

    async def mirror(self, tap: str, bridges: Sequence[str]) -> None:
        """Mirror every port of ``bridges`` (except ``tap`` itself) to ``tap``; all or nothing."""
        added: list[tuple[str, int]] = []
        self._filters[tap] = added
        try:
            for bridge in bridges:
                for port in bridge_ports(bridge):
                    if port == tap:
                        continue
                    code, err = await _tc("qdisc", "add", "dev", port, "ingress")
                    if code != 0 and "File exists" not in err and "Exclusivity" not in err:
                        raise MirrorError(f"cannot add an ingress qdisc to {port}: {err}")
                    pref = next(self._prefs)
                    code, err = await _tc(
                        "filter", "add", "dev", port, "parent", "ffff:", "pref", str(pref),
                        "protocol", "all", "u32", "match", "u32", "0", "0",
                        "action", "mirred", "egress", "mirror", "dev", tap,
                    )  # fmt: skip
                    if code != 0:
                        raise MirrorError(f"cannot mirror {port} to {tap}: {err}")
                    added.append((port, pref))
        except MirrorError:
            await self.unmirror(tap)
            raise

    async def unmirror(self, tap: str) -> None:
        for port, pref in self._filters.pop(tap, []):
            # The port may be gone already (a VM stopped): nothing left to remove then.
            await _tc("filter", "del", "dev", port, "parent", "ffff:", "pref", str(pref))
