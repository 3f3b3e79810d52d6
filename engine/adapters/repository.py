"""Postgres persistence for the engine: explicit SQL, ``$n`` parameters, one connection per use.

The caller owns the transaction; ``lock_vm`` takes the VM's row lock (``FOR UPDATE``) so that
every change to one VM's NICs runs one at a time across all engine processes.  Constraint
violations become domain errors: the constraints are the last guard, not the first.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import asyncpg

from engine.adapters.database import VM_LOCK_WAIT_SECONDS
from engine.domain import errors
from engine.domain.errors import EngineError
from engine.domain.macpool import DEFAULT_POOL_ID
from engine.domain.model import (
    AuditEntry,
    Cluster,
    DataCenter,
    Disk,
    Host,
    HostOperation,
    MacPool,
    Network,
    NetworkQos,
    Nic,
    ProfileUser,
    QosRate,
    Version,
    Vm,
    VnicProfile,
)
from engine.domain.rules import Site
from engine.domain.search import Search
from engine.timing import phase
from shared_schema.answers import PlacedNic
from shared_schema.nic import PciAddress

NO_SEARCH = Search()

# What each collection can be searched by (engine/domain/search.py): field -> SQL condition on
# the ILIKE pattern {arg}.  Case-insensitive, as oVirt's search is.
# Case-insensitive as oVirt; lower(name) LIKE rather than ILIKE so that a fixed prefix uses the
# lower(name) index (sql/0009_list_indexes.sql).
NAMED_FIELDS = {"name": "lower({t}name) LIKE lower({arg})"}
VM_FIELDS = {**NAMED_FIELDS, "status": "{t}status ILIKE {arg}"}
HOST_FIELDS = {**VM_FIELDS, "address": "{t}address ILIKE {arg}"}
DATA_CENTER_FIELDS = {
    **NAMED_FIELDS,
    "clusters.name": "EXISTS (SELECT 1 FROM clusters c WHERE c.data_center_id = {t}id AND c.name ILIKE {arg})",
}

_NIC_SELECT = """
SELECT v.id, v.vm_id, v.name, v.mac_addr::text AS mac, v.model, v.vnic_profile_id, v.linked, v.active,
       v.address, v.alias, coalesce(v.network_name, '') AS network_name,
       coalesce(v.bridge, '') AS bridge, coalesce(p.port_mirroring, false) AS port_mirroring,
       coalesce(p.pass_through, false) AS pass_through, q.id AS qos_id, q.name AS qos_name,
       q.data_center_id AS qos_data_center_id, q.inbound_average, q.inbound_peak, q.inbound_burst,
       q.outbound_average, q.outbound_peak, q.outbound_burst
FROM vm_interface_view v LEFT JOIN vnic_profiles p ON p.id = v.vnic_profile_id
     LEFT JOIN network_qos q ON q.id = p.qos_id
"""
# The MAC pool's ranges in order, as one array of 'from-to' texts (see _mac_ranges).
_MAC_RANGES = "ARRAY(SELECT from_mac::text || '-' || to_mac::text FROM mac_pool_ranges ORDER BY id)"
_PROFILE_SELECT = """
SELECT p.*, n.data_center_id FROM vnic_profiles p JOIN networks n ON n.id = p.network_id
"""

_UNIQUE_MESSAGES = {
    "vm_interface_vm_id_name_key": (errors.NIC_NAME_IN_USE, "the VM already has a NIC with that name"),
    "vm_interface_mac_addr_key": (errors.MAC_IN_USE, "that MAC address is already used by another NIC"),
    "vm_device_plugged_address_key": (errors.CONFLICT, "another plugged device of the VM holds that PCI address"),
    "vms_name_key": (errors.NAME_IN_USE, "a VM with that name exists"),
    "clusters_name_key": (errors.NAME_IN_USE, "a cluster with that name exists"),
    "hosts_name_key": (errors.NAME_IN_USE, "a host with that name exists"),
    "hosts_address_port_key": (errors.NAME_IN_USE, "a host with that address and port exists"),
    "networks_data_center_id_name_key": (errors.NAME_IN_USE, "the data center has a network with that name"),
    "data_centers_name_key": (errors.NAME_IN_USE, "a data center with that name exists"),
    "vnic_profiles_network_id_name_key": (errors.NAME_IN_USE, "the network has a vNIC profile with that name"),
    "network_qos_data_center_id_name_key": (errors.NAME_IN_USE, "the data center has a QoS with that name"),
    "vm_disks_vm_id_name_key": (errors.NAME_IN_USE, "the VM has a disk of that image already"),
    "vm_disks_one_bootable": (errors.CONFLICT, "the VM has a bootable disk already; a VM has one"),
}


@contextmanager
def constraint_errors() -> Iterator[None]:
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        kind, message = _UNIQUE_MESSAGES.get(exc.constraint_name or "", (errors.CONFLICT, str(exc)))
        raise EngineError(kind, message) from None
    except asyncpg.ForeignKeyViolationError as exc:
        raise EngineError(errors.IN_USE, f"still referenced: {exc.detail or exc}") from None
    except asyncpg.CheckViolationError as exc:
        raise EngineError(errors.INVALID, f"rejected by the database: {exc.constraint_name}") from None


def _mac_ranges(texts: list[str]) -> Iterator[tuple[str, str]]:
    for text in texts:
        first, last = text.split("-")
        yield first, last


def _address(text: str) -> PciAddress | None:
    return PciAddress.parse(text) if text else None


def _nic(row: Mapping[str, Any]) -> Nic:
    return Nic(
        id=str(row["id"]),
        vm_id=str(row["vm_id"]),
        name=row["name"],
        mac=row["mac"],
        model=row["model"],
        profile_id=str(row["vnic_profile_id"]) if row["vnic_profile_id"] else None,
        linked=row["linked"],
        plugged=row["active"],
        address=_address(row["address"]),
        alias=row["alias"],
        network_name=row["network_name"],
        bridge=row["bridge"],
        port_mirroring=row["port_mirroring"],
        pass_through=row["pass_through"],
        qos=_qos(row, "qos_id", "qos_name", "qos_data_center_id") if row["qos_id"] else None,
    )


def _rate(row: Mapping[str, Any], direction: str) -> QosRate | None:
    average = row[f"{direction}_average"]
    return QosRate(average, row[f"{direction}_peak"], row[f"{direction}_burst"]) if average is not None else None


def _qos(row: Mapping[str, Any], id_: str = "id", name: str = "name", dc: str = "data_center_id") -> NetworkQos:
    description = row["description"] if id_ == "id" else ""
    return NetworkQos(str(row[id_]), row[name], str(row[dc]), description, _rate(row, "inbound"),
                      _rate(row, "outbound"))  # fmt: skip


def _profile(r: asyncpg.Record) -> VnicProfile:
    qos_id = str(r["qos_id"]) if r["qos_id"] else None
    return VnicProfile(str(r["id"]), r["name"], str(r["network_id"]), r["port_mirroring"], r["description"],
                       r["pass_through"], qos_id, str(r["data_center_id"]))  # fmt: skip


def _rates(qos: NetworkQos) -> list[int | None]:
    return [getattr(rate, part) if rate else None for rate in (qos.inbound, qos.outbound)
            for part in ("average", "peak", "burst")]  # fmt: skip


class TimedConnection:
    """The statements a repository sends, timed as the request's ``db`` phase (engine/timing.py)."""

    def __init__(self, conn: asyncpg.Connection):
        self._conn = conn

    async def execute(self, query: str, *args: Any) -> str:
        with phase("db"):
            return str(await self._conn.execute(query, *args))

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        with phase("db"):
            return list(await self._conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        with phase("db"):
            return await self._conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        with phase("db"):
            return await self._conn.fetchval(query, *args)

    def transaction(self) -> TimedTransaction:
        return TimedTransaction(self._conn.transaction())


class TimedTransaction:
    """BEGIN and COMMIT / ROLLBACK are round trips too."""

    def __init__(self, transaction: Any):
        self._transaction = transaction

    async def __aenter__(self) -> None:
        with phase("db"):
            await self._transaction.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        with phase("db"):
            await self._transaction.__aexit__(*exc)


def _operation(r: asyncpg.Record) -> HostOperation:
    return HostOperation(
        id=str(r["id"]), verb=r["verb"], vm_id=str(r["vm_id"]), host_id=str(r["host_id"]), user=r["user_name"],
        nic_id=str(r["nic_id"]) if r["nic_id"] else None, started_at=r["started_at"],
    )  # fmt: skip


def _host_from_json(r: dict[str, Any]) -> Host:
    seen = datetime.fromisoformat(r["last_seen"]) if r["last_seen"] else None
    return Host(str(r["id"]), r["name"], str(r["cluster_id"]), r["address"], r["port"], r["status"], seen)


def _host(r: asyncpg.Record) -> Host:
    return Host(str(r["id"]), r["name"], str(r["cluster_id"]), r["address"], r["port"], r["status"], r["last_seen"])


def _vm(row: asyncpg.Record) -> Vm:
    return Vm(
        id=str(row["id"]),
        name=row["name"],
        cluster_id=str(row["cluster_id"]),
        os_type=row["os_type"],
        status=row["status"],
        memory_bytes=row["memory_bytes"],
        host_id=str(row["run_on_host_id"]) if row["run_on_host_id"] else None,
        kernel=row["kernel"],
        initrd=row["initrd"],
        cmdline=row["cmdline"],
        custom_properties=json.loads(row["custom_properties"]),
        device_generation=row["device_generation"],
        bios_type=row["bios_type"],
        custom_emulated_machine=row["custom_emulated_machine"],
    )


class Repository:
    def __init__(self, conn: asyncpg.Connection):
        self.conn = TimedConnection(conn)

    # -- data centers, clusters, hosts, networks, profiles ------------------------------------
    async def add_data_center(self, name: str, description: str = "") -> DataCenter:
        dc = DataCenter(str(uuid.uuid4()), name, description)
        with constraint_errors():
            await self.conn.execute(
                "INSERT INTO data_centers (id, name, description) VALUES ($1, $2, $3)", dc.id, name, description
            )
        return dc

    async def data_centers(self, search: Search = NO_SEARCH, dc_id: str | None = None) -> list[DataCenter]:
        where, args = _where(search, DATA_CENTER_FIELDS, 2, table="data_centers")
        rows = await self.conn.fetch(
            f"SELECT * FROM data_centers WHERE ($1::uuid IS NULL OR id = $1) AND {where} ORDER BY name {_page(search)}",
            _uuid_or_none(dc_id), *args,
        )  # fmt: skip
        return [DataCenter(str(r["id"]), r["name"], r["description"]) for r in rows]

    async def data_center(self, dc_id: str) -> DataCenter:
        found = await self.data_centers(dc_id=_require_uuid(dc_id, errors.DATA_CENTER_NOT_FOUND, "data center"))
        if not found:
            raise EngineError(errors.DATA_CENTER_NOT_FOUND, f"no data center with id {dc_id}")
        return found[0]

    async def data_center_named(self, name: str) -> DataCenter | None:
        row = await self.conn.fetchrow("SELECT * FROM data_centers WHERE name = $1", name)
        return DataCenter(str(row["id"]), row["name"], row["description"]) if row else None

    async def add_cluster(self, name: str, version: Version, description: str, data_center_id: str) -> Cluster:
        cluster = Cluster(str(uuid.uuid4()), name, version, description, data_center_id)
        with constraint_errors():
            await self.conn.execute(
                """INSERT INTO clusters (id, name, compat_major, compat_minor, description, data_center_id)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                cluster.id, name, version.major, version.minor, description, data_center_id,
            )  # fmt: skip
        return cluster

    async def clusters(
        self, search: Search = NO_SEARCH, cluster_id: str | None = None, data_center_id: str | None = None
    ) -> list[Cluster]:
        where, args = _where(search, NAMED_FIELDS, 3)
        rows = await self.conn.fetch(
            f"""SELECT * FROM clusters WHERE ($1::uuid IS NULL OR id = $1)
                AND ($2::uuid IS NULL OR data_center_id = $2) AND {where} ORDER BY name {_page(search)}""",
            _uuid_or_none(cluster_id), _uuid_or_none(data_center_id), *args,
        )  # fmt: skip
        return [
            Cluster(str(r["id"]), r["name"], Version(r["compat_major"], r["compat_minor"]), r["description"],
                    str(r["data_center_id"]))
            for r in rows
        ]  # fmt: skip

    async def cluster(self, cluster_id: str) -> Cluster:
        found = await self.clusters(cluster_id=_require_uuid(cluster_id, errors.CLUSTER_NOT_FOUND, "cluster"))
        if not found:
            raise EngineError(errors.CLUSTER_NOT_FOUND, f"no cluster with id {cluster_id}")
        return found[0]

    async def add_host(self, name: str, cluster_id: str, address: str, port: int) -> Host:
        host = Host(str(uuid.uuid4()), name, cluster_id, address, port, "up")
        with constraint_errors():
            await self.conn.execute(
                "INSERT INTO hosts (id, name, cluster_id, address, port, status) VALUES ($1, $2, $3, $4, $5, $6)",
                host.id, name, cluster_id, address, port, host.status,
            )  # fmt: skip
        return host

    async def set_host_status(self, host: Host, status: str) -> Host:
        await self.conn.execute("UPDATE hosts SET status = $2 WHERE id = $1", host.id, status)
        return Host(**{**host.__dict__, "status": status})

    async def hosts(self, search: Search = NO_SEARCH, host_id: str | None = None) -> list[Host]:
        where, args = _where(search, HOST_FIELDS, 2)
        page = _page(search)
        rows = await self.conn.fetch(
            f"SELECT * FROM hosts WHERE ($1::uuid IS NULL OR id = $1) AND {where} ORDER BY name {page}",
            _uuid_or_none(host_id), *args,
        )  # fmt: skip
        return [_host(r) for r in rows]

    async def host(self, host_id: str) -> Host:
        found = await self.hosts(host_id=_require_uuid(host_id, errors.HOST_NOT_FOUND, "host"))
        if not found:
            raise EngineError(errors.HOST_NOT_FOUND, f"no host with id {host_id}")
        return found[0]

    async def add_network(
        self, name: str, data_center_id: str, bridge: str, cluster_id: str | None
    ) -> tuple[Network, VnicProfile]:
        """A network and its default vNIC profile of the same name (as oVirt creates), attached
        to ``cluster_id`` when given."""
        network = Network(
            str(uuid.uuid4()), name, data_center_id, bridge, frozenset({cluster_id} if cluster_id else ())
        )
        profile = VnicProfile(str(uuid.uuid4()), name, network.id, data_center_id=data_center_id)
        with constraint_errors():
            await self.conn.execute(
                "INSERT INTO networks (id, data_center_id, name, bridge) VALUES ($1, $2, $3, $4)",
                network.id, data_center_id, name, bridge,
            )  # fmt: skip
            await self.conn.execute(
                "INSERT INTO vnic_profiles (id, network_id, name) VALUES ($1, $2, $3)", profile.id, network.id, name
            )
            if cluster_id:
                await self.attach_network(cluster_id, network.id)
        return network, profile

    async def attach_network(self, cluster_id: str, network_id: str) -> None:
        await self.conn.execute(
            "INSERT INTO cluster_networks (cluster_id, network_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            cluster_id, network_id,
        )  # fmt: skip

    async def networks(
        self,
        search: Search = NO_SEARCH,
        network_id: str | None = None,
        cluster_id: str | None = None,
        data_center_id: str | None = None,
    ) -> list[Network]:
        """Networks (of a data center; or attached to a cluster), each with the clusters it is attached to."""
        where, args = _where(search, NAMED_FIELDS, 4, table="n")
        rows = await self.conn.fetch(
            f"""SELECT n.*, coalesce(array_agg(cn.cluster_id) FILTER (WHERE cn.cluster_id IS NOT NULL), '{{}}')
                       AS cluster_ids
                FROM networks n LEFT JOIN cluster_networks cn ON cn.network_id = n.id
                WHERE ($1::uuid IS NULL OR n.id = $1) AND ($3::uuid IS NULL OR n.data_center_id = $3)
                  AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM cluster_networks a
                                                   WHERE a.network_id = n.id AND a.cluster_id = $2))
                  AND {where}
                GROUP BY n.id ORDER BY n.name {_page(search)}""",
            _uuid_or_none(network_id), _uuid_or_none(cluster_id), _uuid_or_none(data_center_id), *args,
        )  # fmt: skip
        return [
            Network(str(r["id"]), r["name"], str(r["data_center_id"]), r["bridge"],
                    frozenset(str(c) for c in r["cluster_ids"]))
            for r in rows
        ]  # fmt: skip

    async def network(self, network_id: str) -> Network:
        found = await self.networks(network_id=_require_uuid(network_id, errors.NETWORK_NOT_FOUND, "network"))
        if not found:
            raise EngineError(errors.NETWORK_NOT_FOUND, f"no network with id {network_id}")
        return found[0]

    async def profiles(
        self, search: Search = NO_SEARCH, profile_id: str | None = None, network_id: str | None = None
    ) -> list[VnicProfile]:
        where, args = _where(search, NAMED_FIELDS, 3, table="p")
        rows = await self.conn.fetch(
            f"""{_PROFILE_SELECT} WHERE ($1::uuid IS NULL OR p.id = $1)
                AND ($2::uuid IS NULL OR p.network_id = $2) AND {where} ORDER BY p.name {_page(search)}""",
            _uuid_or_none(profile_id), _uuid_or_none(network_id), *args,
        )  # fmt: skip
        return [_profile(r) for r in rows]

    async def profile(self, profile_id: str, *, lock: str = "") -> VnicProfile:
        """The profile; ``lock`` 'UPDATE' (a change of it) or 'SHARE' (a NIC that applies it now)
        holds its row until the transaction ends."""
        key = _require_uuid(profile_id, errors.PROFILE_NOT_FOUND, "vNIC profile")
        assert lock in ("", "UPDATE", "SHARE")
        row = await self.conn.fetchrow(f"{_PROFILE_SELECT} WHERE p.id = $1 {f'FOR {lock} OF p' if lock else ''}", key)
        if row is None:
            raise EngineError(errors.PROFILE_NOT_FOUND, f"no vNIC profile with id {profile_id}")
        return _profile(row)

    async def hold_nic_profile(self, nic_id: str) -> None:
        """``profile(lock='SHARE')`` of the NIC's profile, before the NIC is read (a plug)."""
        await self.conn.execute(
            """SELECT 1 FROM vnic_profiles WHERE id = (SELECT vnic_profile_id FROM vm_interface WHERE id = $1)
               FOR SHARE""",
            _require_uuid(nic_id, errors.NIC_NOT_FOUND, "NIC"),
        )

    async def hold_profiles(self, vm_id: str) -> None:
        """Share-lock the profiles of the VM's NICs: what the host applies for them (mirroring,
        QoS) cannot change until this transaction ends (a start sends them)."""
        await self.conn.execute(
            """SELECT 1 FROM vnic_profiles WHERE id IN (SELECT vnic_profile_id FROM vm_interface WHERE vm_id = $1)
               ORDER BY id FOR SHARE""",
            vm_id,
        )

    async def add_profile(self, profile: VnicProfile) -> None:
        with constraint_errors():
            await self.conn.execute(
                """INSERT INTO vnic_profiles (id, network_id, name, port_mirroring, description, pass_through, qos_id)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                profile.id, profile.network_id, profile.name, profile.port_mirroring, profile.description,
                profile.pass_through, profile.qos_id,
            )  # fmt: skip

    async def update_profile(self, profile: VnicProfile) -> None:
        with constraint_errors():
            await self.conn.execute(
                """UPDATE vnic_profiles SET name = $2, port_mirroring = $3, description = $4, pass_through = $5,
                          qos_id = $6 WHERE id = $1""",
                profile.id, profile.name, profile.port_mirroring, profile.description, profile.pass_through,
                profile.qos_id,
            )  # fmt: skip

    async def delete_profile(self, profile_id: str) -> None:
        with constraint_errors():
            await self.conn.execute("DELETE FROM vnic_profiles WHERE id = $1", profile_id)

    async def profile_users(self, *, profile_id: str | None = None, qos_id: str | None = None) -> list[ProfileUser]:
        """The NICs that use the profile (or any profile with the QoS), plugged ones into running VMs first."""
        rows = await self.conn.fetch(
            """SELECT vm.name AS vm_name, vm.status, i.name AS nic_name, i.active
               FROM vm_interface_view i JOIN vms vm ON vm.id = i.vm_id JOIN vnic_profiles p ON p.id = i.vnic_profile_id
               WHERE p.id = $1 OR p.qos_id = $2
               ORDER BY (i.active AND vm.status <> 'down') DESC, vm.name, i.name""",
            _uuid_or_none(profile_id), _uuid_or_none(qos_id),
        )  # fmt: skip
        return [ProfileUser(r["vm_name"], r["status"], r["nic_name"], r["active"]) for r in rows]

    # -- network QoS ---------------------------------------------------------------------------
    async def qoss(self, data_center_id: str, qos_id: str | None = None, *, lock: bool = False) -> list[NetworkQos]:
        rows = await self.conn.fetch(
            f"""SELECT * FROM network_qos WHERE data_center_id = $1 AND ($2::uuid IS NULL OR id = $2)
                ORDER BY name {"FOR UPDATE" if lock else ""}""",
            data_center_id, _uuid_or_none(qos_id),
        )  # fmt: skip
        return [_qos(r) for r in rows]

    async def qos(self, data_center_id: str, qos_id: str, *, lock: bool = False) -> NetworkQos:
        """The data center's QoS (404 for one of another data center); ``lock``: for a change of it."""
        key = _require_uuid(qos_id, errors.QOS_NOT_FOUND, "QoS")
        found = await self.qoss(data_center_id, key, lock=lock)
        if not found:
            raise EngineError(errors.QOS_NOT_FOUND, f"data center has no QoS with id {qos_id}")
        return found[0]

    async def add_qos(self, qos: NetworkQos) -> None:
        with constraint_errors():
            await self.conn.execute(
                """INSERT INTO network_qos (id, data_center_id, name, description, inbound_average, inbound_peak,
                                            inbound_burst, outbound_average, outbound_peak, outbound_burst)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
                qos.id, qos.data_center_id, qos.name, qos.description, *_rates(qos),
            )  # fmt: skip

    async def update_qos(self, qos: NetworkQos) -> None:
        with constraint_errors():
            await self.conn.execute(
                """UPDATE network_qos SET name = $2, description = $3, inbound_average = $4, inbound_peak = $5,
                          inbound_burst = $6, outbound_average = $7, outbound_peak = $8, outbound_burst = $9
                   WHERE id = $1""",
                qos.id, qos.name, qos.description, *_rates(qos),
            )  # fmt: skip

    async def delete_qos(self, qos_id: str) -> None:
        with constraint_errors():
            await self.conn.execute("DELETE FROM network_qos WHERE id = $1", qos_id)

    async def qos_profiles(self, qos_id: str, *, lock: bool = False) -> list[str]:
        """The names of the profiles that use the QoS; ``lock``: hold them (a change of the QoS)."""
        rows = await self.conn.fetch(
            f"SELECT name FROM vnic_profiles WHERE qos_id = $1 ORDER BY id {'FOR UPDATE' if lock else ''}", qos_id
        )
        return sorted(r["name"] for r in rows)

    # -- VMs ---------------------------------------------------------------------------------
    async def add_vm(self, vm: Vm) -> None:
        with constraint_errors():
            await self.conn.execute(
                """INSERT INTO vms (id, name, cluster_id, os_type, status, memory_bytes, kernel, initrd, cmdline,
                                    custom_properties, bios_type, custom_emulated_machine)
                   VALUES ($1, $2, $3, $4, 'down', $5, $6, $7, $8, $9, $10, $11)""",
                vm.id, vm.name, vm.cluster_id, vm.os_type, vm.memory_bytes, vm.kernel, vm.initrd, vm.cmdline,
                json.dumps(vm.custom_properties), vm.bios_type, vm.custom_emulated_machine,
            )  # fmt: skip

    async def vms(self, search: Search = NO_SEARCH, vm_id: str | None = None) -> list[Vm]:
        where, args = _where(search, VM_FIELDS, 2)
        page = _page(search)
        rows = await self.conn.fetch(
            f"SELECT * FROM vms WHERE ($1::uuid IS NULL OR id = $1) AND {where} ORDER BY name {page}",
            _uuid_or_none(vm_id), *args,
        )  # fmt: skip
        return [_vm(r) for r in rows]

    async def vm(self, vm_id: str, *, lock: bool = False) -> Vm:
        """The VM; with ``lock``, hold its row lock until the transaction ends."""
        key = _require_uuid(vm_id, errors.VM_NOT_FOUND, "VM")
        if not lock:
            row = await self.conn.fetchrow("SELECT * FROM vms WHERE id = $1", key)
        else:
            # Changes to one VM queue here, each holding the lock through its host call; past
            # the limit (set per connection, engine/adapters/database.py) the caller hears that
            # the VM is busy instead of waiting without end.
            try:
                row = await self.conn.fetchrow("SELECT * FROM vms WHERE id = $1 FOR UPDATE", key)
            except asyncpg.LockNotAvailableError:
                raise EngineError(
                    errors.VM_BUSY,
                    f"other changes of this VM are still running after {VM_LOCK_WAIT_SECONDS} s; try again",
                ) from None
        if row is None:
            raise EngineError(errors.VM_NOT_FOUND, f"no VM with id {vm_id}")
        return _vm(row)

    async def vm_unless_locked(self, vm_id: str) -> Vm | None:
        """The VM with its row lock, or None when a use case holds the lock now (or it is gone)."""
        row = await self.conn.fetchrow("SELECT * FROM vms WHERE id = $1 FOR UPDATE SKIP LOCKED", vm_id)
        return _vm(row) if row else None

    async def poll_answered(self, host_id: str, reported_ids: list[str]) -> tuple[list[Vm], set[str]]:
        """A host answered its poll: note when, and read the VMs to compare with its answer — those
        it runs by the database, those it reports, and those with an interrupted operation on it
        (the second set).  One statement, one round trip: monitoring makes one per host per cycle.
        A union of index lookups: an OR of the three made PostgreSQL scan every VM for every poll
        (1,000 hosts and 6,500 VMs kept it busy on most of a core)."""
        rows = await self.conn.fetch(
            """WITH seen AS (UPDATE hosts SET last_seen = now() WHERE id = $1),
                    interrupted AS (SELECT DISTINCT vm_id FROM host_operations WHERE host_id = $1),
                    wanted AS (SELECT id FROM vms WHERE run_on_host_id = $1
                               UNION SELECT unnest($2::uuid[]) UNION SELECT vm_id FROM interrupted)
               SELECT v.*, v.id IN (SELECT vm_id FROM interrupted) AS interrupted FROM vms v
               WHERE v.id IN (SELECT id FROM wanted)""",
            host_id, reported_ids,
        )  # fmt: skip
        return [_vm(r) for r in rows], {str(r["id"]) for r in rows if r["interrupted"]}

    async def set_vm_status(self, vm_id: str, status: str, host_id: str | None) -> None:
        await self.conn.execute("UPDATE vms SET status = $2, run_on_host_id = $3 WHERE id = $1", vm_id, status, host_id)

    async def remove_vm(self, vm_id: str) -> None:
        await self.conn.execute("DELETE FROM vms WHERE id = $1", vm_id)
        await self.conn.execute("DELETE FROM host_operations WHERE vm_id = $1", vm_id)

    # -- NICs --------------------------------------------------------------------------------
    async def nics(self, vm_id: str) -> list[Nic]:
        rows = await self.conn.fetch(_NIC_SELECT + " WHERE v.vm_id = $1 ORDER BY v.name", vm_id)
        return [_nic(r) for r in rows]

    async def nic(self, vm_id: str, nic_id: str) -> Nic:
        key = _require_uuid(nic_id, errors.NIC_NOT_FOUND, "NIC")
        row = await self.conn.fetchrow(_NIC_SELECT + " WHERE v.vm_id = $1 AND v.id = $2", vm_id, key)
        if row is None:
            raise EngineError(errors.NIC_NOT_FOUND, f"VM has no NIC with id {nic_id}")
        return _nic(row)

    async def site(self, vm: Vm) -> Site:
        """What the plug rules look at besides the VM and the NIC."""
        return (await self.plug_site(vm))[0]

    async def plug_site(self, vm: Vm) -> tuple[Site, bool]:
        """The site, and whether the VM has an interrupted operation: one round trip."""
        site, interrupted, _ = await self._site(vm, None)
        return site, interrupted

    async def nic_at_site(self, vm: Vm, nic_id: str) -> tuple[Nic, Site, bool]:
        """``nic`` and ``plug_site`` in one round trip (a plug or unplug asks both)."""
        key = _require_uuid(nic_id, errors.NIC_NOT_FOUND, "NIC")
        site, interrupted, nic = await self._site(vm, key)
        if nic is None:
            raise EngineError(errors.NIC_NOT_FOUND, f"VM has no NIC with id {nic_id}")
        return nic, site, interrupted

    async def _site(self, vm: Vm, nic_id: str | None) -> tuple[Site, bool, Nic | None]:
        row = await self.conn.fetchrow(
            f"""SELECT c.id, c.name, c.compat_major, c.compat_minor, c.description, c.data_center_id,
                      (SELECT count(*) FROM vm_device WHERE vm_id = $1 AND is_plugged)
                      + (SELECT count(*) FROM vm_disks WHERE vm_id = $1) AS plugged,
                      EXISTS (SELECT 1 FROM host_operations WHERE vm_id = $1) AS interrupted,
                      to_jsonb(h) AS host, to_jsonb(n) AS nic
               FROM clusters c LEFT JOIN hosts h ON h.id = $3
                    LEFT JOIN LATERAL ({_NIC_SELECT} WHERE $4::uuid IS NOT NULL AND v.vm_id = $1 AND v.id = $4) n
                    ON true
               WHERE c.id = $2""",
            vm.id, vm.cluster_id, vm.host_id, nic_id,
        )  # fmt: skip
        if row is None:
            raise EngineError(errors.CLUSTER_NOT_FOUND, f"no cluster with id {vm.cluster_id}")
        cluster = Cluster(str(row["id"]), row["name"], Version(row["compat_major"], row["compat_minor"]),
                          row["description"], str(row["data_center_id"]))  # fmt: skip
        host = _host_from_json(json.loads(row["host"])) if row["host"] else None
        if vm.host_id and host is None:
            raise EngineError(errors.HOST_NOT_FOUND, f"no host with id {vm.host_id}")
        nic = _nic(json.loads(row["nic"])) if row["nic"] else None
        return Site(cluster, host, row["plugged"]), row["interrupted"], nic

    async def plugged_count(self, vm_id: str) -> int:
        count: int = await self.conn.fetchval("SELECT count(*) FROM vm_device WHERE vm_id = $1 AND is_plugged", vm_id)
        return count

    async def take_mac_offset(self) -> tuple[list[tuple[str, str]], int]:
        """The pool's ranges, and the next offset into them from the pool's cursor (sql/0014)."""
        row = await self.conn.fetchrow(f"SELECT nextval('mac_pool_cursor') AS k, {_MAC_RANGES} AS r")
        assert row is not None
        return list(_mac_ranges(row["r"])), int(row["k"])

    async def move_mac_cursor(self, offset: int) -> int:
        """Take ``offset`` and move the cursor past it (forward only)."""
        await self.conn.execute(
            "SELECT setval('mac_pool_cursor', GREATEST($1, (SELECT last_value FROM mac_pool_cursor)))", offset
        )
        return offset

    async def used_macs(self) -> list[str]:
        return [r["m"] for r in await self.conn.fetch("SELECT mac_addr::text AS m FROM vm_interface")]

    # -- the MAC pool (one: oVirt's Default; sql/0015) ----------------------------------------
    async def mac_pool(self, pool_id: str, *, lock: bool = False) -> MacPool:
        """The pool (404 for any other id); ``lock``: for a change of it, which holds its row until the
        transaction ends (changes of the pool queue there before they touch its ranges)."""
        if _uuid_or_none(pool_id) != uuid.UUID(DEFAULT_POOL_ID):
            raise EngineError(errors.MAC_POOL_NOT_FOUND, f"no MAC pool with id {pool_id}")
        if lock:
            try:
                await self.conn.execute("SELECT 1 FROM mac_pool FOR UPDATE")
            except asyncpg.LockNotAvailableError:
                raise EngineError(
                    errors.CONFLICT,
                    f"another change of the MAC pool is still running after {VM_LOCK_WAIT_SECONDS} s; try again",
                ) from None
        row = await self.conn.fetchrow(f"SELECT name, description, {_MAC_RANGES} AS r FROM mac_pool")
        assert row is not None  # sql/0015 made the one row
        return MacPool(DEFAULT_POOL_ID, row["name"], row["description"], tuple(_mac_ranges(row["r"])))

    async def set_mac_pool(self, name: str, description: str) -> None:
        with constraint_errors():
            await self.conn.execute("UPDATE mac_pool SET name = $1, description = $2", name, description)

    async def replace_mac_ranges(self, ranges: tuple[tuple[str, str], ...]) -> None:
        """The pool's ranges, in this order, and its cursor back at the first of them: the next add
        takes the first free MAC of the new ranges (an add moves past taken ones).

        The table lock comes first.  A NIC add holds the ranges it read (ACCESS SHARE) until it
        commits, so this waits for adds that picked a MAC from the old ranges, and adds that come
        later wait for this transaction: no add pairs the old ranges with the new cursor, or the new
        ranges with the old cursor.  The cursor's reset is not transactional (a sequence's never is):
        should this transaction roll back after it, the next add starts at the first MAC of the old
        ranges and moves past the taken ones, which is as correct, only slower once."""
        try:
            await self.conn.execute("LOCK TABLE mac_pool_ranges IN ACCESS EXCLUSIVE MODE")
        except asyncpg.LockNotAvailableError:
            raise EngineError(
                errors.CONFLICT,
                f"NIC adds that take MACs from the pool are still running after {VM_LOCK_WAIT_SECONDS} s; try again",
            ) from None
        await self.conn.execute("DELETE FROM mac_pool_ranges")
        await self.conn.execute(
            """INSERT INTO mac_pool_ranges (from_mac, to_mac)
               SELECT f::macaddr, t::macaddr FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r (f, t, n)
               ORDER BY n""",
            [first for first, _ in ranges], [last for _, last in ranges],
        )  # fmt: skip
        await self.conn.execute("SELECT setval('mac_pool_cursor', 0, false)")

    async def insert_nic(self, nic: Nic) -> None:
        with constraint_errors():
            await self.conn.execute(
                """INSERT INTO vm_device (device_id, vm_id, type, device, address, is_plugged, alias)
                   VALUES ($1, $2, 'interface', 'bridge', $3, $4, $5)""",
                nic.id, nic.vm_id, str(nic.address or ""), nic.plugged, nic.alias,
            )  # fmt: skip
            await self.conn.execute(
                """INSERT INTO vm_interface (id, vm_id, name, mac_addr, model, vnic_profile_id, linked)
                   VALUES ($1, $2, $3, $4::macaddr, $5, $6, $7)""",
                nic.id, nic.vm_id, nic.name, nic.mac, nic.model, nic.profile_id, nic.linked,
            )  # fmt: skip

    async def try_insert_nic(self, nic: Nic) -> bool:
        """Insert unless its MAC is taken meanwhile (False); in a savepoint, so the caller's
        transaction goes on either way."""
        try:
            async with self.conn.transaction():
                await self.insert_nic(nic)
        except EngineError as exc:
            if exc.kind is not errors.MAC_IN_USE:
                raise
            return False
        return True

    async def update_nic(self, nic: Nic) -> None:
        with constraint_errors():
            await self.conn.execute(
                """UPDATE vm_interface SET name = $2, mac_addr = $3::macaddr, model = $4, vnic_profile_id = $5,
                          linked = $6 WHERE id = $1""",
                nic.id, nic.name, nic.mac, nic.model, nic.profile_id, nic.linked,
            )  # fmt: skip
            await self.set_device(nic)

    async def set_device(self, nic: Nic, ending: str | None = None) -> None:
        """Store the plugged flag, address and alias of a NIC's device, and bump its VM's device
        generation; ``ending``: the journaled operation whose outcome this is, ended with it
        (``end_operation``).  One round trip."""
        with constraint_errors():
            await self.conn.execute(
                """WITH changed AS (
                       UPDATE vm_device SET is_plugged = $2, address = $3, alias = $4 WHERE device_id = $1
                       RETURNING vm_id),
                   ended AS (DELETE FROM host_operations WHERE id = $5)
                   UPDATE vms SET device_generation = device_generation + 1 WHERE id IN (SELECT vm_id FROM changed)""",
                nic.id, nic.plugged, str(nic.address or ""), nic.alias, _uuid_or_none(ending),
            )  # fmt: skip

    async def set_linked(self, nic_id: str, linked: bool) -> None:
        """A NIC's link state as its host has it (monitoring follows a change made outside the engine)."""
        await self.conn.execute("UPDATE vm_interface SET linked = $2 WHERE id = $1", nic_id, linked)

    async def bump_devices(self, vm_id: str) -> int:
        """One more change to the VM's devices (monitoring looks again); the new generation."""
        generation: int = await self.conn.fetchval(
            "UPDATE vms SET device_generation = device_generation + 1 WHERE id = $1 RETURNING device_generation",
            vm_id,
        )
        return generation

    async def delete_nic(self, nic_id: str) -> None:
        vm_id = await self.conn.fetchval("DELETE FROM vm_device WHERE device_id = $1 RETURNING vm_id", nic_id)
        if vm_id is not None:
            await self.bump_devices(vm_id)

    # -- disks -------------------------------------------------------------------------------
    async def disks(self, vm_id: str, disk_id: str | None = None) -> list[Disk]:
        rows = await self.conn.fetch(
            "SELECT * FROM vm_disks WHERE vm_id = $1 AND ($2::uuid IS NULL OR id = $2) ORDER BY bootable DESC, name",
            vm_id, _uuid_or_none(disk_id),
        )  # fmt: skip
        return [
            Disk(str(r["id"]), str(r["vm_id"]), r["name"], r["format"], r["interface"], r["bootable"], r["read_only"])
            for r in rows
        ]

    async def disk(self, vm_id: str, disk_id: str) -> Disk:
        found = await self.disks(vm_id, _require_uuid(disk_id, errors.DISK_NOT_FOUND, "disk"))
        if not found:
            raise EngineError(errors.DISK_NOT_FOUND, f"VM has no disk attachment with id {disk_id}")
        return found[0]

    async def add_disk(self, disk: Disk) -> None:
        with constraint_errors():
            await self.conn.execute(
                """INSERT INTO vm_disks (id, vm_id, name, format, interface, bootable, read_only)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                disk.id, disk.vm_id, disk.name, disk.format, disk.interface, disk.bootable, disk.read_only,
            )  # fmt: skip

    async def delete_disk(self, disk_id: str) -> None:
        await self.conn.execute("DELETE FROM vm_disks WHERE id = $1", disk_id)

    # -- audit log ---------------------------------------------------------------------------
    async def audit(
        self,
        log_type: int,
        severity: str,
        message: str,
        user: str,
        vm: Vm | None = None,
        nic: Nic | None = None,
        host: Host | None = None,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO audit_log (log_type, severity, message, user_name, vm_id, vm_name, nic_id, nic_name,
                                      host_id, host_name)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            log_type, severity, message, user, vm.id if vm else None, vm.name if vm else "",
            nic.id if nic else None, nic.name if nic else "", host.id if host else None, host.name if host else "",
        )  # fmt: skip

    async def audit_entries(self, vm_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        rows = await self.conn.fetch(
            """SELECT * FROM audit_log WHERE $1::uuid IS NULL OR vm_id = $1 ORDER BY id DESC LIMIT $2""",
            _uuid_or_none(vm_id), limit,
        )  # fmt: skip
        return [
            AuditEntry(
                id=r["id"], log_type=r["log_type"], severity=r["severity"], message=r["message"],
                time=r["log_time"], user=r["user_name"], vm_id=str(r["vm_id"]) if r["vm_id"] else None,
                nic_id=str(r["nic_id"]) if r["nic_id"] else None, nic_name=r["nic_name"],
                host_id=str(r["host_id"]) if r["host_id"] else None, host_name=r["host_name"],
            )
            for r in rows
        ]  # fmt: skip

    # -- monitoring --------------------------------------------------------------------------
    async def claim_hosts(self, engine_id: str, ttl_seconds: float) -> list[Host]:
        """Renew this engine's host leases and take those that expired (or never had one): each
        host is watched by one engine at a time, and by another soon after its engine died."""
        await self.conn.execute(
            """INSERT INTO host_leases (host_id, engine_id, expires_at)
               SELECT id, $1, now() + make_interval(secs => $2) FROM hosts
               ON CONFLICT (host_id) DO UPDATE SET engine_id = $1, expires_at = EXCLUDED.expires_at
               WHERE host_leases.engine_id = $1 OR host_leases.expires_at < now()""",
            engine_id, ttl_seconds,
        )  # fmt: skip
        rows = await self.conn.fetch(
            "SELECT h.* FROM hosts h JOIN host_leases l ON l.host_id = h.id WHERE l.engine_id = $1 ORDER BY h.name",
            engine_id,
        )
        return [_host(r) for r in rows]

    async def release_hosts(self, engine_id: str) -> None:
        await self.conn.execute("DELETE FROM host_leases WHERE engine_id = $1", engine_id)

    async def unmanaged_nics(self, vm_ids: list[str]) -> dict[str, list[PlacedNic]]:
        rows = await self.conn.fetch(
            """SELECT vm_id, alias, mac_addr::text AS mac, address FROM vm_unmanaged_nics
               WHERE vm_id = ANY($1::uuid[]) ORDER BY first_seen, alias""",
            vm_ids,
        )
        found: dict[str, list[PlacedNic]] = {}
        for r in rows:
            found.setdefault(str(r["vm_id"]), []).append(
                PlacedNic(r["alias"], r["mac"], address=_address(r["address"]))
            )
        return found

    async def set_unmanaged_nics(self, vm_id: str, nics: tuple[PlacedNic, ...]) -> None:
        """The foreign NICs the host reports now: new ones added, gone ones dropped."""
        keep = [f"{n.alias} {n.mac}" for n in nics]
        await self.conn.execute(
            "DELETE FROM vm_unmanaged_nics WHERE vm_id = $1 AND NOT (alias || ' ' || mac_addr::text = ANY($2))",
            vm_id, keep,
        )  # fmt: skip
        for nic in nics:
            await self.conn.execute(
                """INSERT INTO vm_unmanaged_nics (vm_id, alias, mac_addr, address) VALUES ($1, $2, $3::macaddr, $4)
                   ON CONFLICT (vm_id, alias, mac_addr) DO UPDATE SET address = EXCLUDED.address""",
                vm_id, nic.alias, nic.mac, str(nic.address or ""),
            )  # fmt: skip

    # -- the operations journal (engine/services/journal.py) ---------------------------------
    async def end_operation(self, op_id: str) -> None:
        """The operation's outcome is stored: in the transaction that stores it."""
        await self.conn.execute("DELETE FROM host_operations WHERE id = $1", op_id)

    async def open_operations(self, vm_id: str) -> list[HostOperation]:
        """Operations on the VM whose outcome was never stored; under the VM's lock, none of them is
        still running (a use case holds the lock from before its journal entry until it ends)."""
        rows = await self.conn.fetch("SELECT * FROM host_operations WHERE vm_id = $1 ORDER BY started_at", vm_id)
        return [_operation(r) for r in rows]

    async def counts(self, table: str) -> dict[str, int]:
        """How many hosts or VMs there are in each status (metrics)."""
        assert table in ("hosts", "vms")
        rows = await self.conn.fetch(f"SELECT status, count(*) AS n FROM {table} GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    async def server_version(self) -> str:
        return str(await self.conn.fetchval("SHOW server_version"))

    # -- API sessions ------------------------------------------------------------------------
    async def add_session(self, token: str, user: str, role: str, expires_at: datetime) -> None:
        await self.conn.execute("DELETE FROM api_sessions WHERE expires_at < now()")
        await self.conn.execute(
            "INSERT INTO api_sessions (token, user_name, role, expires_at) VALUES ($1, $2, $3, $4)",
            token, user, role, expires_at,
        )  # fmt: skip

    async def user(self, name: str) -> tuple[str, str] | None:
        """(role, password hash) of an API user."""
        row = await self.conn.fetchrow("SELECT role, password_hash FROM api_users WHERE name = $1", name)
        return (row["role"], row["password_hash"]) if row else None

    async def user_hash(self, name: str) -> str | None:
        found = await self.user(name)
        return found[1] if found else None

    async def set_user(self, name: str, role: str, password_hash: str) -> None:
        await self.conn.execute(
            """INSERT INTO api_users (name, role, password_hash) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash""",
            name, role, password_hash,
        )  # fmt: skip

    async def delete_user(self, name: str) -> None:
        await self.conn.execute("DELETE FROM api_users WHERE name = $1", name)
        await self.conn.execute("DELETE FROM api_sessions WHERE user_name = $1", name)

    async def locked_until(self, keys: list[str]) -> list[datetime | None]:
        rows = await self.conn.fetch("SELECT locked_until FROM login_failures WHERE key = ANY($1)", keys)
        return [r["locked_until"] for r in rows]

    async def count_failure(self, key: str, window_seconds: float) -> int:
        """One more failed login for ``key``; the count within the window, this one included."""
        count: int = await self.conn.fetchval(
            """INSERT INTO login_failures (key, failures, window_start) VALUES ($1, 1, now())
               ON CONFLICT (key) DO UPDATE SET
                   failures = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2)
                                   THEN 1 ELSE login_failures.failures + 1 END,
                   window_start = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2)
                                       THEN now() ELSE login_failures.window_start END
               RETURNING failures""",
            key, window_seconds,
        )  # fmt: skip
        return count

    async def lock(self, key: str, until: datetime) -> None:
        await self.conn.execute("UPDATE login_failures SET locked_until = $2 WHERE key = $1", key, until)

    async def clear_failures(self, keys: list[str]) -> None:
        await self.conn.execute("DELETE FROM login_failures WHERE key = ANY($1)", keys)

    async def delete_session(self, token: str) -> None:
        await self.conn.execute("DELETE FROM api_sessions WHERE token = $1", token)

    async def session(self, token: str) -> tuple[str, str] | None:
        row = await self.conn.fetchrow(
            "SELECT user_name, role FROM api_sessions WHERE token = $1 AND expires_at > now()", token
        )
        return (row["user_name"], row["role"]) if row else None


def _where(search: Search, fields: dict[str, str], first: int, table: str = "") -> tuple[str, list[str]]:
    """A search as SQL conditions on the query's parameters ``$first``, ``$first+1``, ..."""
    clauses, args = [], []
    for term in search.terms:
        args.append(term.like())
        condition = fields[term.field].format(t=f"{table}." if table else "", arg=f"${first + len(args) - 1}")
        clauses.append(f"NOT ({condition})" if term.negated else condition)
    return " AND ".join(clauses) or "true", args


def _page(search: Search) -> str:
    """LIMIT and OFFSET for the search's page; literals, checked whole numbers (search.parse)."""
    if search.max is None:
        return ""
    return f"LIMIT {int(search.max)} OFFSET {int(search.offset)}"


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)  # matches nothing


def _require_uuid(value: str, kind: errors.ErrorKind, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise EngineError(kind, f"no {what} with id {value}") from None
