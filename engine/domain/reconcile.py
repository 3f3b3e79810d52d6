"""Reconciliation: what the database says about a VM + what its host reports → the changes to
make, each with its audit entry.  Pure; ``engine/services/monitoring.py`` applies the result.

The host is the truth for what runs and what is plugged into a running VM:

    the host reports                      the database says           change
    ------------------------------------  --------------------------  ----------------------------------
    the VM is not there (or Down)         running on that host        VM down, NIC addresses cleared
    the VM runs (Up, Paused, ...)         another status              VM status follows the host
    a NIC of ours                         unplugged                   plugged, with the host's address
    no NIC of ours that the DB has        plugged                     unplugged, address cleared
    a NIC of ours at another address      plugged                     the host's address
    a NIC of ours with its link up/down   the other link state        the host's link state
    a NIC the engine does not know        -                           reported (kept, shown), never
                                                                      adopted or removed
    a reported foreign NIC is gone        reported                    no longer reported

Only NICs that libvirt gave our alias (``ua-<nic id>``) or whose MAC is a NIC of this VM count as
ours.  Changes to a VM whose use case holds its lock are never computed: the caller skips it.

An operation the journal still holds (``engine/services/journal.py``) was interrupted before its
outcome was stored: the same table settles it from what the host reports, and its audit entry
says which operation it was and how it ended, instead of "outside the engine".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.domain.model import DOWN, HostOperation, Nic, Vm
from shared_schema.answers import VM_DOWN, VM_PAUSED, VM_POWERING_DOWN, VM_UP, PlacedNic, VmStats
from shared_schema.nic import PciAddress

# oVirt's audit log types where oVirt has one; ours (96xx) where it has none.
VM_DOWN_ON_HOST = 119  # oVirt's VM_DOWN_ERROR
NIC_UNPLUGGED_ON_HOST, NIC_PLUGGED_ON_HOST, UNMANAGED_NIC, VM_STATUS_ON_HOST = 9601, 9602, 9603, 9604
NIC_MOVED_ON_HOST = 9605
INTERRUPTED_SETTLED = 9606
NIC_LINK_ON_HOST = 9607

# VDSM's words for a domain's state -> the engine's VM status.
STATUS_OF = {VM_UP: "up", VM_PAUSED: "paused", VM_POWERING_DOWN: "powering_down", VM_DOWN: DOWN}


@dataclass(frozen=True)
class Audit:
    log_type: int
    severity: str
    message: str


@dataclass(frozen=True)
class VmStatusChange:
    status: str
    host_id: str | None
    audit: Audit


@dataclass(frozen=True)
class NicChange:
    """The NIC as it must be stored: plugged flag, alias and address as the host has them."""

    nic: Nic
    kind: str  # "unplugged", "plugged", "moved", "link", "cleared" (the VM went down: no address)
    audit: Audit | None


@dataclass(frozen=True)
class Foreign:
    """NICs the host reports that the engine does not manage: the full set now seen."""

    nics: tuple[PlacedNic, ...]
    new: tuple[PlacedNic, ...]  # not reported before: each gets an audit entry


@dataclass(frozen=True)
class Changes:
    vm: VmStatusChange | None = None
    nics: tuple[NicChange, ...] = ()
    foreign: Foreign | None = None
    settled: tuple[Audit, ...] = ()  # one per interrupted operation, saying how it ended

    def kinds(self) -> list[str]:
        """What changed, for the metrics: 'vm_status', 'nic_unplugged', ..., 'unmanaged_nic'."""
        found = ["vm_status"] if self.vm else []
        found += [f"nic_{c.kind}" for c in self.nics]
        found += ["unmanaged_nic"] * len(self.foreign.new) if self.foreign else []
        found += ["interrupted_settled"] * len(self.settled)
        return found


def _alias_of(nic: Nic) -> str:
    return nic.alias or f"ua-{nic.id}"


def reconcile(
    vm: Vm,
    host_id: str,
    host_name: str,
    nics: list[Nic],
    reported: VmStats | None,
    known_foreign: set[str],
    interrupted: Sequence[HostOperation] = (),
) -> Changes:
    """``reported``: the VM as ``host_id`` runs it, None when the host does not have it.
    ``known_foreign``: the 'alias mac' keys of the foreign NICs already reported.
    ``interrupted``: the VM's operations whose outcome was never stored."""
    found = _follow(vm, host_id, host_name, nics, reported, known_foreign)
    if not interrupted:
        return found
    # The interrupted operations explain the NIC changes they caused: no "outside the engine".
    explained = {op.nic_id for op in interrupted}
    nic_changes = tuple(NicChange(c.nic, c.kind, None) if c.nic.id in explained else c for c in found.nics)
    before = {n.id: n for n in nics}
    after = before | {c.nic.id: c.nic for c in found.nics}
    status = found.vm.status if found.vm else vm.status
    settled = tuple(
        _settled(op, vm, host_name, before.get(op.nic_id or ""), after.get(op.nic_id or ""), status)
        for op in interrupted
    )
    return Changes(found.vm, nic_changes, found.foreign, settled)


def _settled(op: HostOperation, vm: Vm, host_name: str, before: Nic | None, nic: Nic | None, status: str) -> Audit:
    when = f" at {op.started_at:%Y-%m-%d %H:%M:%S %Z}".rstrip() if op.started_at else ""
    if op.verb == "update" and status != DOWN:
        name = nic.name if nic else "(since removed)"
        what = f"The link change of NIC {name} of VM {vm.name} by {op.user}{when}"
        linked = bool(nic and nic.linked)
        outcome = f"host {host_name} has its link {'up' if linked else 'down'}, and so does the engine now"
        finished = before is not None and nic is not None and before.linked != nic.linked
        ending = "it had finished" if finished else "it had not happened"
        return Audit(
            INTERRUPTED_SETTLED,
            "warning",
            f"{what} was interrupted before its outcome was stored; {outcome}: {ending}.",
        )
    if op.verb in ("plug", "unplug", "update") and status == DOWN:
        name = nic.name if nic else "(since removed)"
        what = f"The {op.verb} of NIC {name} of VM {vm.name} by {op.user}{when}"
        return Audit(INTERRUPTED_SETTLED, "warning", f"{what} was interrupted before its outcome was stored; "
                     f"VM {vm.name} no longer runs on host {host_name}, so nothing is left of it.")  # fmt: skip
    if op.verb in ("plug", "unplug"):
        name = nic.name if nic else "(since removed)"
        what = f"The {op.verb} of NIC {name} of VM {vm.name} by {op.user}{when}"
        plugged = bool(nic and nic.plugged)
        outcome = f"host {host_name} has the NIC {'plugged' if plugged else 'unplugged'}, and so does the engine now"
        finished = plugged == (op.verb == "plug")
    else:
        what = f"The {op.verb} of VM {vm.name} by {op.user}{when}"
        running = status != DOWN
        outcome = f"host {host_name} {'runs' if running else 'does not run'} it, and the engine now says {status}"
        finished = running == (op.verb == "start")
    ending = "it had finished" if finished else "it had not happened"
    text = f"{what} was interrupted before its outcome was stored; {outcome}: {ending}."
    return Audit(INTERRUPTED_SETTLED, "warning", text)


def _follow(
    vm: Vm, host_id: str, host_name: str, nics: list[Nic], reported: VmStats | None, known_foreign: set[str]
) -> Changes:
    status = STATUS_OF.get(reported.status, DOWN) if reported else DOWN
    if status == DOWN:
        if vm.status == DOWN:
            return Changes()
        audit = Audit(VM_DOWN_ON_HOST, "error", f"VM {vm.name} is down: it no longer runs on host {host_name}.")
        cleared = tuple(NicChange(n.changed(address=None), "cleared", None) for n in nics if n.address is not None)
        return Changes(VmStatusChange(DOWN, None, audit), cleared)

    assert reported is not None
    vm_change = None
    if vm.status != status or vm.host_id != host_id:
        audit = Audit(VM_STATUS_ON_HOST, "warning" if status != "up" else "normal",
                      f"VM {vm.name} is {status.replace('_', ' ')} on host {host_name}.")  # fmt: skip
        vm_change = VmStatusChange(status, host_id, audit)

    by_alias = {n.alias: n for n in reported.nics}
    by_mac = {n.mac: n for n in reported.nics}
    ours: set[PlacedNic] = set()
    nic_changes = []
    for nic in nics:
        placed = by_alias.get(_alias_of(nic)) or by_mac.get(nic.mac)
        if placed is not None:
            ours.add(placed)
        if nic.plugged and placed is None:
            text = f"NIC {nic.name} of VM {vm.name} was unplugged on host {host_name}, outside the engine."
            nic_changes.append(NicChange(nic.changed(plugged=False, address=None), "unplugged",
                                         Audit(NIC_UNPLUGGED_ON_HOST, "warning", text)))  # fmt: skip
        elif not nic.plugged and placed is not None:
            text = f"NIC {nic.name} of VM {vm.name} was plugged on host {host_name}, outside the engine."
            adopted = nic.changed(plugged=True, alias=placed.alias, address=placed.address, linked=placed.link_active)
            nic_changes.append(NicChange(adopted, "plugged", Audit(NIC_PLUGGED_ON_HOST, "warning", text)))
        elif placed is not None and (placed.address, placed.alias, placed.link_active) != (
            nic.address,
            _alias_of(nic),
            nic.linked,
        ):
            followed = nic.changed(alias=placed.alias, address=placed.address, linked=placed.link_active)
            link = None
            if placed.link_active != nic.linked:
                text = (f"The link of NIC {nic.name} of VM {vm.name} is {'up' if placed.link_active else 'down'} "
                        f"on host {host_name}: it was changed outside the engine.")  # fmt: skip
                link = Audit(NIC_LINK_ON_HOST, "warning", text)
            moved = (placed.address, placed.alias) != (nic.address, _alias_of(nic))
            nic_changes.append(NicChange(followed, "moved" if moved else "link", link))

    foreign = tuple(n for n in reported.nics if n not in ours)
    new = tuple(n for n in foreign if foreign_key(n.alias, n.mac) not in known_foreign)
    foreign_change = None
    if new or {foreign_key(n.alias, n.mac) for n in foreign} != known_foreign:
        foreign_change = Foreign(foreign, new)
    return Changes(vm_change, tuple(nic_changes), foreign_change)


def foreign_key(alias: str, mac: str) -> str:
    return f"{alias} {mac}"


def unmanaged_audit(vm: Vm, host_name: str, nic: PlacedNic) -> Audit:
    where = f" at {nic.address}" if isinstance(nic.address, PciAddress) else ""
    return Audit(
        UNMANAGED_NIC,
        "warning",
        f"VM {vm.name} on host {host_name} has a NIC the engine does not manage: MAC {nic.mac}, "
        f"alias {nic.alias or '(none)'}{where}. It is left as it is.",
    )
