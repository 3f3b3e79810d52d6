"""Port mirroring (the seed's ``promisc``): copy all traffic of some bridges to a VM's tap.

Frames forwarded between two ports of a Linux bridge never pass the bridge device's own
traffic-control hooks, so each port of a mirrored bridge gets an ``ingress`` qdisc and a
match-all u32 filter with ``action mirred egress mirror dev <tap>``: every frame entering
the bridge is copied to the tap.

What to mirror outlives the agent: each mirrored NIC is recorded in its domain's live
metadata (namespace :data:`MIRROR_NS`, ``<mirroring><nic alias tap><bridge name/></nic>``), set
when the NIC is plugged or its VM created, removed on unplug.  At start the agent reads the
records of every running domain back (:meth:`PortMirror.restore`) and puts the filters in
place again.  The filters are then *reconciled*, never just added: the wanted set is every
(bridge port, tap) pair of the records, for the ports the bridges have now; the agent's own
filters (marked with the action cookie :data:`COOKIE`) are read from the kernel for ports it
does not know yet and cached per port (name and ifindex) afterwards.  A periodic
:meth:`PortMirror.run` repeats this every few seconds (``mirror_sync_interval``), so a port that
joins a bridge later is mirrored whoever made it (a container's veth, another VM's tap; libvirt's
DEVICE_ADDED would tell only of this host's VMs), and after every plug at once; a reconcile that
changes nothing reads a few sysfs directories and runs no ``tc``.  Its first pass reads the
records again and looks at every bridge port of the host, to remove filters of the agent that
no record wants any more (a VM destroyed while the agent was down).
When the last of its own filters leaves a port and no filter of anyone remains there, the
agent deletes that port's (empty) ``ingress`` qdisc; it never touches a ``clsact`` qdisc or a
filter without its cookie.  Records whose tap is gone (the VM stopped, the NIC left behind
the agent's back) are dropped.

``tc`` runs as an asyncio subprocess and sysfs is read in a worker thread: nothing here
blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from lxml import etree

from shared_schema.answers import VM_DOWN
from shared_schema.errors import ParamError
from shared_schema.nic import parse_device_name
from vdsm_agent.hypervisor import Domain, Hypervisor, HypervisorError, NoSuchDomain
from vdsm_agent.live_xml import parse_nics

log = logging.getLogger(__name__)

# Where the records live in a domain's <metadata> (libvirt setMetadata, AFFECT_LIVE).
MIRROR_NS = "urn:x-hotplug-nic:port-mirroring:1"
MIRROR_KEY = "hpnic"
# Marks the agent's own tc filters (a mirred action cookie, at most 16 bytes).
COOKIE = b"hpnic-mirror".hex()
# Filter preferences the agent picks from (never one already used on the port).
PREFS = range(40000, 50000)

_SYS_NET = Path("/sys/class/net")


class MirrorError(Exception):
    pass


# --- Records in the domain's metadata (pure) ------------------------------------------------------


@dataclass(frozen=True)
class MirrorRecord:
    """One mirrored NIC: every port of ``bridges`` (but the tap itself) is copied to ``tap``."""

    alias: str
    tap: str
    bridges: tuple[str, ...]


def records_xml(records: Iterable[MirrorRecord]) -> str | None:
    """The metadata element for a VM's records (as given to setMetadata), or None for none."""
    root = etree.Element("mirroring")
    for record in sorted(records, key=lambda r: r.alias):
        nic = etree.SubElement(root, "nic", alias=record.alias, tap=record.tap)
        for bridge in record.bridges:
            etree.SubElement(nic, "bridge", name=bridge)
    return etree.tostring(root, encoding="unicode") if len(root) else None


def parse_records(domain_xml: str | bytes) -> list[MirrorRecord]:
    """The records in a domain's XML (libvirt puts every element in our namespace); a malformed
    entry is skipped with a warning: metadata is anyone's to edit."""
    root = etree.fromstring(domain_xml.encode() if isinstance(domain_xml, str) else domain_xml)
    found = []
    for nic in root.iterfind(f"metadata/{{{MIRROR_NS}}}mirroring/{{{MIRROR_NS}}}nic"):
        alias, tap = nic.get("alias", ""), nic.get("tap", "")
        bridges = tuple(str(b.get("name", "")) for b in nic.iterfind(f"{{{MIRROR_NS}}}bridge"))
        try:
            for name in (tap, *bridges):
                parse_device_name(name, "mirroring record")
        except ParamError as exc:
            log.warning("ignoring a malformed port mirroring record for %r: %s", alias, exc.detail)
            continue
        if alias and bridges:
            found.append(MirrorRecord(alias, tap, bridges))
    return found


# --- The host's side: bridge ports and tc filters ----------------------------------------------


@dataclass(frozen=True)
class PortFilters:
    """A port's ingress filters: every preference in use (anyone's), and the agent's own."""

    prefs: frozenset[int] = frozenset()
    ours: tuple[tuple[int, str], ...] = ()  # (pref, target device; '*' once the target is gone)


def parse_filters(tc_json: str) -> PortFilters:
    """``tc -j filter show dev PORT ingress`` -> the port's filters (pure)."""
    prefs: set[int] = set()
    ours: dict[int, str] = {}
    try:
        entries = json.loads(tc_json or "[]")
    except ValueError:
        entries = []
    for entry in entries if isinstance(entries, list) else []:
        pref = entry.get("pref")
        if not isinstance(pref, int):
            continue
        prefs.add(pref)
        for action in (entry.get("options") or {}).get("actions", []):
            if action.get("kind") == "mirred" and action.get("cookie") == COOKIE:
                ours[pref] = str(action.get("to_dev", "*"))
    return PortFilters(frozenset(prefs), tuple(sorted(ours.items())))


@dataclass(frozen=True)
class HostView:
    """What the host has now: the ports of the bridges asked about (those that exist), and the
    ifindex of every device asked about or found (those that exist)."""

    ports: dict[str, tuple[str, ...]]
    ifindex: dict[str, int]


class HostNet(Protocol):
    async def look(self, bridges: Iterable[str] | None, devices: Iterable[str]) -> HostView:
        """``bridges`` None: every bridge of the host."""
        ...

    async def filters(self, port: str) -> PortFilters: ...
    async def add_filter(self, port: str, pref: int, tap: str) -> None:
        """Mirror ``port``'s ingress to ``tap`` (adding the ingress qdisc if needed), or MirrorError."""
        ...

    async def delete_filter(self, port: str, pref: int) -> None: ...
    async def drop_ingress_if_empty(self, port: str) -> bool:
        """Delete the port's ``ingress`` qdisc if no filter is left on it; True if it did."""
        ...


def _look(bridges: Iterable[str] | None, devices: Iterable[str]) -> HostView:
    if bridges is None:
        bridges = [d.name for d in _SYS_NET.iterdir() if (d / "bridge").is_dir()]
    ports: dict[str, tuple[str, ...]] = {}
    for bridge in bridges:
        with contextlib.suppress(OSError):
            ports[bridge] = tuple(sorted(p.name for p in (_SYS_NET / bridge / "brif").iterdir()))
    ifindex: dict[str, int] = {}
    for dev in {*devices, *(p for names in ports.values() for p in names)}:
        with contextlib.suppress(OSError, ValueError):
            ifindex[dev] = int((_SYS_NET / dev / "ifindex").read_text())
    return HostView(ports, ifindex)


async def _tc(*args: str) -> tuple[int, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "tc", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        raise MirrorError(f"cannot run tc: {exc}") from None
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace").strip()


class TcHost:
    """The real host: sysfs (in a worker thread) and ``tc`` (asyncio subprocesses)."""

    async def look(self, bridges: Iterable[str] | None, devices: Iterable[str]) -> HostView:
        return await asyncio.to_thread(_look, None if bridges is None else list(bridges), list(devices))

    async def filters(self, port: str) -> PortFilters:
        code, out, _ = await _tc("-j", "filter", "show", "dev", port, "ingress")
        return parse_filters(out) if code == 0 else PortFilters()

    async def add_filter(self, port: str, pref: int, tap: str) -> None:
        code, _, err = await _tc("qdisc", "add", "dev", port, "ingress")
        if code != 0 and "File exists" not in err and "Exclusivity" not in err:
            raise MirrorError(f"cannot add an ingress qdisc to {port}: {err}")
        code, _, err = await _tc(
            "filter", "add", "dev", port, "parent", "ffff:", "pref", str(pref), "protocol", "all",
            "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", tap, "cookie", COOKIE,
        )  # fmt: skip
        if code != 0:
            raise MirrorError(f"cannot mirror {port} to {tap}: {err}")

    async def delete_filter(self, port: str, pref: int) -> None:
        # The port may be gone already (a VM stopped): nothing left to remove then.
        await _tc("filter", "del", "dev", port, "parent", "ffff:", "pref", str(pref))

    async def drop_ingress_if_empty(self, port: str) -> bool:
        code, out, _ = await _tc("-j", "filter", "show", "dev", port, "ingress")
        if code != 0 or out.strip() not in ("", "[]"):
            return False
        code, out, _ = await _tc("-j", "qdisc", "show", "dev", port, "ingress")
        try:
            kinds = {q.get("kind") for q in json.loads(out or "[]")} if code == 0 else set()
        except (ValueError, AttributeError):
            kinds = set()
        if "ingress" not in kinds:
            return False  # none, or a clsact qdisc (which may hold egress filters): not ours to remove
        code, _, _ = await _tc("qdisc", "del", "dev", port, "ingress")
        return code == 0


# --- The mirroring service ----------------------------------------------------------------------


@dataclass
class _Port:
    ifindex: int  # a port deleted and created again under its name has lost its filters
    prefs: set[int]  # every preference in use on its ingress, anyone's
    ours: dict[int, str] = field(default_factory=dict)  # pref -> tap, the agent's filters


class PortMirror:
    """The records (vmId -> alias -> record) and the filters that carry them out.

    Callers hold the VM's lock around :meth:`mirror` and :meth:`unmirror` (they write that
    VM's metadata); an internal lock orders every change to the filters.
    """

    def __init__(self, hypervisor: Hypervisor, host: HostNet | None = None) -> None:
        self._hv = hypervisor
        self._host: HostNet = host or TcHost()
        self._records: dict[str, dict[str, MirrorRecord]] = {}
        self._ports: dict[str, _Port] = {}
        self._lock = asyncio.Lock()
        self._failing: set[tuple[str, str]] = set()  # (port, tap) failures already logged

    def records(self, vm_id: str) -> list[MirrorRecord]:
        return sorted(self._records.get(vm_id, {}).values(), key=lambda r: r.alias)

    def applied(self) -> dict[str, set[str]]:
        """Port -> the taps the agent mirrors it to, as it believes the kernel has them."""
        return {port: set(state.ours.values()) for port, state in self._ports.items()}

    async def mirror(self, vm_id: str, alias: str, tap: str, bridges: Sequence[str]) -> None:
        """Record and mirror every port of ``bridges`` (but ``tap``) to ``tap``; all or nothing."""
        if not tap:
            raise MirrorError(f"{alias} has no tap device to mirror to")
        async with self._lock:
            view = await self._host.look(bridges, [])
            for bridge in bridges:
                if bridge not in view.ports:
                    raise MirrorError(f"network bridge {bridge!r} does not exist on this host")
            self._records.setdefault(vm_id, {})[alias] = MirrorRecord(alias, tap, tuple(bridges))
            try:
                await self._persist(vm_id)  # first: a crash after it leaves a record to restore
                failures = await self._reconcile()
                mine = [why for (_, target), why in failures.items() if target == tap]
                if mine:
                    raise MirrorError(mine[0])
            except MirrorError:
                self._drop(vm_id, alias)
                await self._reconcile()
                with contextlib.suppress(MirrorError):
                    await self._persist(vm_id)
                raise
        log.info("VM %s: mirroring %s to %s (%s)", vm_id, ", ".join(bridges), tap, alias)

    async def unmirror(self, vm_id: str, alias: str) -> None:
        """Stop mirroring to the NIC and remove its record (nothing to do if it has none)."""
        async with self._lock:
            if not self._drop(vm_id, alias):
                return
            try:
                await self._reconcile()
                await self._persist(vm_id)
            except MirrorError as exc:
                log.warning("VM %s: %s", vm_id, exc)
        log.info("VM %s: no longer mirroring to %s", vm_id, alias)

    async def forget_vm(self, vm_id: str) -> None:
        """The VM is gone (and its metadata with it): remove the filters of its records."""
        async with self._lock:
            if self._records.pop(vm_id, None):
                try:
                    await self._reconcile()
                except MirrorError as exc:
                    log.warning("VM %s: %s", vm_id, exc)

    async def restore(self, domains: Iterable[Domain], *, scan_host: bool = False) -> None:
        """Take up the records of every running domain, and reconcile the filters (at start;
        ``scan_host``: also remove stale filters of the agent from every bridge port of the host)."""
        async with self._lock:
            for domain in domains:
                if domain.status == VM_DOWN:
                    continue
                recorded = parse_records(domain.xml)
                if not recorded:
                    continue
                taps = {n.alias: n.tap for n in parse_nics(domain.xml)}
                # The tap as libvirt has it now; a record of a NIC that left is dropped.
                kept = {r.alias: replace(r, tap=taps[r.alias]) for r in recorded if taps.get(r.alias)}
                if kept:
                    self._records[domain.vm_id] = kept
                    log.info("VM %s: restoring port mirroring to %s", domain.vm_id, ", ".join(sorted(kept)))
                if list(kept.values()) != recorded:
                    try:
                        await self._persist(domain.vm_id)
                    except MirrorError as exc:
                        log.warning("VM %s: %s", domain.vm_id, exc)
            await self._reconcile(scan_host=scan_host)

    async def sync(self) -> None:
        """Reconcile now: mirror new ports, forget gone ones.  Never raises: a failure is logged."""
        if not (self._records or self._ports):
            return
        try:
            async with self._lock:
                await self._reconcile()
        except Exception:
            log.exception("port mirroring: reconciling the filters failed")

    async def run(self, interval: float) -> None:
        """Reconcile every ``interval`` seconds.  The first time, read the records again and
        scan the whole host for stale filters: the records are read just before, so a filter
        another agent on this host recorded meanwhile is not taken for a stale one."""
        scanned = False
        while True:
            await asyncio.sleep(interval)
            if scanned:
                await self.sync()
                continue
            try:
                await self.restore(await self._hv.domains(), scan_host=True)
                scanned = True
            except Exception:
                log.exception("port mirroring: scanning the host for stale filters failed")

    def _drop(self, vm_id: str, alias: str) -> bool:
        records = self._records.get(vm_id, {})
        dropped = records.pop(alias, None) is not None
        if not records:
            self._records.pop(vm_id, None)
        return dropped

    async def _persist(self, vm_id: str) -> None:
        xml = records_xml(self._records.get(vm_id, {}).values())
        try:
            await self._hv.set_metadata(vm_id, MIRROR_NS, MIRROR_KEY, xml)
        except NoSuchDomain:
            return  # gone, and its metadata with it
        except HypervisorError as exc:
            raise MirrorError(f"cannot record port mirroring in the domain's metadata: {exc.message}") from None

    async def _reconcile(self, *, scan_host: bool = False) -> dict[tuple[str, str], str]:
        """Make the filters what the records want; answer the (port, tap) pairs that failed."""
        records = [r for by_alias in self._records.values() for r in by_alias.values()]
        bridges = sorted({b for r in records for b in r.bridges})
        view = await self._host.look(None if scan_host else bridges, [*(r.tap for r in records), *self._ports])
        left: set[str] = set()  # VMs that lost a record: their metadata is written again below
        for vm_id, by_alias in list(self._records.items()):
            for alias, record in list(by_alias.items()):
                if record.tap not in view.ifindex:
                    log.info("VM %s: the tap %s of %s is gone; no longer mirroring to it", vm_id, record.tap, alias)
                    self._drop(vm_id, alias)
                    left.add(vm_id)
        wanted: dict[str, set[str]] = {}
        for by_alias in self._records.values():
            for record in by_alias.values():
                for bridge in record.bridges:
                    for port in view.ports.get(bridge, ()):
                        if port != record.tap:
                            wanted.setdefault(port, set()).add(record.tap)
        candidates = set(wanted) | set(self._ports)
        if scan_host:
            candidates |= {p for names in view.ports.values() for p in names}
        failures: dict[tuple[str, str], str] = {}
        for port in sorted(candidates):
            await self._reconcile_port(port, view.ifindex.get(port), wanted.get(port, set()), failures)
        for port, tap in sorted(failures.keys() - self._failing):
            log.warning("port mirroring: %s", failures[(port, tap)])
        self._failing = set(failures)
        for vm_id in sorted(left):  # a VM that stopped has no metadata left to write: fine
            try:
                await self._persist(vm_id)
            except MirrorError as exc:
                log.warning("VM %s: %s", vm_id, exc)
        return failures

    async def _reconcile_port(
        self, port: str, ifindex: int | None, wanted: set[str], failures: dict[tuple[str, str], str]
    ) -> None:
        if ifindex is None:  # the port is gone, and its filters with it
            self._ports.pop(port, None)
            return
        state = self._ports.get(port)
        if state is None or state.ifindex != ifindex:
            found = await self._host.filters(port)
            state = _Port(ifindex, set(found.prefs), dict(found.ours))
        kept: set[str] = set()
        removed = False
        for pref, target in sorted(state.ours.items()):
            if target in wanted and target not in kept:
                kept.add(target)
                continue
            await self._host.delete_filter(port, pref)  # not wanted, a duplicate, or its tap gone ('*')
            del state.ours[pref]
            state.prefs.discard(pref)
            removed = True
        for tap in sorted(wanted - kept):
            free = next((p for p in PREFS if p not in state.prefs), None)
            try:
                if free is None:
                    raise MirrorError(f"no free filter preference left on {port}")
                await self._host.add_filter(port, free, tap)
            except MirrorError as exc:
                failures[(port, tap)] = str(exc)
                continue
            state.ours[free] = tap
            state.prefs.add(free)
        if state.ours:
            self._ports[port] = state
            return
        self._ports.pop(port, None)
        if removed and await self._host.drop_ingress_if_empty(port):
            log.info("port mirroring: removed the ingress qdisc of %s, no filter is left on it", port)
