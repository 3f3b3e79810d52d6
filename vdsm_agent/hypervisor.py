"""The hypervisor behind the agent: one small interface, and its libvirt implementation.

Every blocking libvirt call runs in a worker thread (``asyncio.to_thread``): opening and
closing the connection and (de)registering its event callbacks too.  Only libvirtaio's event
implementation is registered from the event loop itself, as it binds to the loop it is
registered from; device events (DEVICE_REMOVED, DEVICE_REMOVAL_FAILED) arrive in that loop
through it and are handed to one listener.  ``vdsm_agent.simulated`` is the other
implementation, for scale benchmarks only.

Nothing here caches a domain: every ``domain()`` / ``domains()`` reads the live XML again, so a
device change made by anyone (a late DEVICE_REMOVED, ``virsh attach-device``) shows at once.

**libvirtd may restart under the agent** (an upgrade, a crash): running guests carry on, but the
connection dies with it.  libvirt's close callback then starts a reconnect that retries every
half second; any call made meanwhile opens the connection itself or fails with libvirt's error.
Each new connection registers the device event callbacks again, so an unplug waiting for
DEVICE_REMOVED hears it from the new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from shared_schema.answers import VM_DOWN, VM_PAUSED, VM_POWERING_DOWN, VM_UNKNOWN, VM_UP

T = TypeVar("T")
log = logging.getLogger(__name__)
RECONNECT_INTERVAL = 0.5  # seconds between attempts while libvirtd is away

# (vmId, device alias, removed): removed is False when the guest refused (REMOVAL_FAILED).
DeviceListener = Callable[[str, str, bool], None]

VIR_ERR_NO_DOMAIN = 42


class HypervisorError(Exception):
    """A refusal from the hypervisor, with its own error code and message (libvirt's)."""

    def __init__(self, code: int, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{message} (libvirt error {code})")


class NoSuchDomain(HypervisorError):
    pass


@dataclass(frozen=True)
class Domain:
    vm_id: str
    name: str
    status: str  # VDSM's words: VM_UP, VM_PAUSED, VM_DOWN, ... (shared_schema.answers)
    xml: str  # the live XML (with the domain's <metadata>)


class Hypervisor(Protocol):
    async def open(self, listener: DeviceListener) -> None: ...
    async def close(self) -> None: ...
    async def versions(self) -> dict[str, str]: ...
    async def network_names(self) -> list[str]: ...
    async def domains(self) -> list[Domain]: ...
    async def domain(self, vm_id: str) -> Domain: ...
    async def create(self, xml: str) -> Domain: ...
    async def destroy(self, vm_id: str) -> None: ...
    async def attach(self, vm_id: str, xml: str) -> None: ...
    async def detach(self, vm_id: str, alias: str) -> None:
        """Ask for removal and return; the removal itself arrives through the listener."""
        ...

    async def update_device(self, vm_id: str, xml: str) -> None:
        """Change a device of the running domain in place (libvirt's updateDeviceFlags, live)."""
        ...

    async def set_metadata(self, vm_id: str, uri: str, key: str, xml: str | None) -> None:
        """Set (or with None remove) the running domain's metadata element of namespace ``uri``."""
        ...


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


class LibvirtHypervisor:
    _events_registered = False  # libvirt accepts one event implementation per process

    def __init__(self, uri: str):
        self._uri = uri
        self._conn: Any = None
        self._callbacks: list[int] = []
        self._listener: DeviceListener | None = None
        self._opening = asyncio.Lock()
        self._reconnect: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self, listener: DeviceListener) -> None:
        import libvirt
        import libvirtaio

        if not LibvirtHypervisor._events_registered:
            libvirtaio.virEventRegisterAsyncIOImpl()  # here, on the loop: it binds to this loop
            LibvirtHypervisor._events_registered = True
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors arrive as exceptions
        self._listener = listener
        await self._connection()

    async def _connect(self) -> Any:
        """A new connection with the device event callbacks and the close callback on it."""
        import libvirt

        listener = self._listener
        assert listener is not None  # open() came first
        conn = await self._call(libvirt.open, self._uri)

        def removed(_conn: Any, dom: Any, alias: str, _opaque: Any) -> None:
            listener(dom.UUIDString(), alias, True)

        def removal_failed(_conn: Any, dom: Any, alias: str, _opaque: Any) -> None:
            listener(dom.UUIDString(), alias, False)

        callbacks = []
        for event, callback in (
            (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, removed),
            (libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED, removal_failed),
        ):
            callbacks.append(await self._call(conn.domainEventRegisterAny, None, event, callback, None))
        await self._call(conn.registerCloseCallback, self._closed, None)
        self._callbacks = callbacks
        return conn

    def _closed(self, _conn: Any, reason: int, _opaque: Any) -> None:
        """libvirt's close callback (in the event loop): libvirtd went away."""
        if self._closing:
            return
        log.warning("the connection to libvirtd closed (reason %s): reconnecting", reason)
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_until_open())

    async def _reconnect_until_open(self) -> None:
        while not self._closing:
            try:
                await self._connection()
            except HypervisorError as exc:
                log.debug("libvirtd is not back yet: %s", exc)
                await asyncio.sleep(RECONNECT_INTERVAL)
            else:
                log.warning("connected to libvirtd again; device events are registered again")
                return

    async def _connection(self) -> Any:
        """The live connection: opened again, with its callbacks, when libvirtd restarted."""
        if self._conn is not None and self._conn.isAlive():  # a local check, no round trip
            return self._conn
        async with self._opening:
            if self._conn is None or not self._conn.isAlive():
                dead, self._conn = self._conn, None
                if dead is not None:
                    with contextlib.suppress(HypervisorError):
                        await self._call(dead.close)
                self._conn = await self._connect()
        return self._conn

    async def close(self) -> None:
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        callbacks, self._callbacks = self._callbacks, []
        try:
            for callback in callbacks:
                with contextlib.suppress(HypervisorError):
                    await self._call(conn.domainEventDeregisterAny, callback)
            with contextlib.suppress(HypervisorError):
                await self._call(conn.unregisterCloseCallback)
        finally:
            with contextlib.suppress(HypervisorError):
                await self._call(conn.close)
        await asyncio.sleep(0.05)  # let libvirtaio release the connection's watches

    @staticmethod
    async def _call(fn: Callable[..., T], *args: Any) -> T:
        import libvirt

        try:
            return await asyncio.to_thread(fn, *args)
        except libvirt.libvirtError as exc:
            code, message = exc.get_error_code(), exc.get_error_message() or str(exc)
            cls = NoSuchDomain if code == VIR_ERR_NO_DOMAIN else HypervisorError
            raise cls(code, message) from None

    async def versions(self) -> dict[str, str]:
        conn = await self._connection()
        return {
            "libvirt": _version(await self._call(conn.getLibVersion)),
            "qemu": _version(await self._call(conn.getVersion)),
        }

    async def network_names(self) -> list[str]:
        networks = await self._call((await self._connection()).listAllNetworks, 0)
        return sorted(n.name() for n in networks)

    @staticmethod
    def _describe(dom: Any) -> Domain:
        import libvirt

        status = {
            libvirt.VIR_DOMAIN_RUNNING: VM_UP,
            libvirt.VIR_DOMAIN_BLOCKED: VM_UP,  # running, waiting on a resource
            libvirt.VIR_DOMAIN_PAUSED: VM_PAUSED,
            libvirt.VIR_DOMAIN_PMSUSPENDED: VM_PAUSED,
            libvirt.VIR_DOMAIN_SHUTDOWN: VM_POWERING_DOWN,
            libvirt.VIR_DOMAIN_SHUTOFF: VM_DOWN,
            libvirt.VIR_DOMAIN_CRASHED: VM_DOWN,
        }.get(dom.state()[0], VM_UNKNOWN)
        return Domain(dom.UUIDString(), dom.name(), status, dom.XMLDesc(0))

    async def _lookup(self, vm_id: str) -> Any:
        return await self._call((await self._connection()).lookupByUUIDString, vm_id)

    def _describe_all(self, conn: Any) -> list[Domain]:
        """Every domain with its live XML: one listing and one XMLDesc per domain, in one thread."""
        import libvirt

        described = []
        for dom in conn.listAllDomains(0):
            try:
                described.append(self._describe(dom))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != VIR_ERR_NO_DOMAIN:
                    raise
                # went away while we looked
        return described

    async def domains(self) -> list[Domain]:
        return await self._call(self._describe_all, await self._connection())

    async def domain(self, vm_id: str) -> Domain:
        return await self._call(self._describe, await self._lookup(vm_id))

    async def create(self, xml: str) -> Domain:
        dom = await self._call((await self._connection()).createXML, xml, 0)
        return await self._call(self._describe, dom)

    async def destroy(self, vm_id: str) -> None:
        await self._call((await self._lookup(vm_id)).destroy)

    async def attach(self, vm_id: str, xml: str) -> None:
        import libvirt

        dom = await self._lookup(vm_id)
        await self._call(dom.attachDeviceFlags, xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    async def detach(self, vm_id: str, alias: str) -> None:
        import libvirt

        dom = await self._lookup(vm_id)
        await self._call(dom.detachDeviceAlias, alias, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    async def update_device(self, vm_id: str, xml: str) -> None:
        import libvirt

        dom = await self._lookup(vm_id)
        await self._call(dom.updateDeviceFlags, xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    async def set_metadata(self, vm_id: str, uri: str, key: str, xml: str | None) -> None:
        import libvirt

        dom = await self._lookup(vm_id)
        await self._call(
            dom.setMetadata, libvirt.VIR_DOMAIN_METADATA_ELEMENT, xml, key, uri, libvirt.VIR_DOMAIN_AFFECT_LIVE
        )
