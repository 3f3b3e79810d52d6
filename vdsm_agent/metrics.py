"""The agent's Prometheus metrics, served at ``GET /metrics``.

Each application gets its own :class:`~prometheus_client.CollectorRegistry` (never the
process-wide default), so several agents can run in one process (the tests do).

    vdsm_agent_request_duration_seconds{verb}   histogram  every JSON-RPC call, by verb
    vdsm_agent_nic_results_total{verb,code}     counter    hotplugNic / hotunplugNic outcomes:
                                                           code 0 for success, else the error code
    vdsm_agent_unplug_resends_total             counter    unplug requests sent again because the
                                                           guest had not released the NIC yet
    vdsm_agent_late_removals_total              counter    NICs released after their unplug call
                                                           had given up (code 50, timeout)
    vdsm_agent_vms{status}                      gauge      VMs on this host by status, as of the
                                                           last Host.getAllVmStats
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shared_schema.answers import VM_DOWN, VM_PAUSED, VM_POWERING_DOWN, VM_UNKNOWN, VM_UP

# From a 1 ms plug on the simulated hypervisor to a 30 s unplug timeout (VDSM's default).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
STATUSES = (VM_UP, VM_PAUSED, VM_POWERING_DOWN, VM_DOWN, VM_UNKNOWN)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            "vdsm_agent_request_duration_seconds",
            "Time to answer a JSON-RPC call, by verb",
            ["verb"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.nic_results = Counter(
            "vdsm_agent_nic_results",
            "Outcomes of VM.hotplugNic and VM.hotunplugNic: code 0 for success, else the error code",
            ["verb", "code"],
            registry=self.registry,
        )
        self.unplug_resends = Counter(
            "vdsm_agent_unplug_resends",
            "Unplug requests sent again because the guest had not released the NIC yet",
            registry=self.registry,
        )
        self.late_removals = Counter(
            "vdsm_agent_late_removals",
            "NICs the guest released after their unplug call had given up",
            registry=self.registry,
        )
        self.vms = Gauge(
            "vdsm_agent_vms",
            "VMs on this host by status, as of the last Host.getAllVmStats",
            ["status"],
            registry=self.registry,
        )

    def count_vms(self, statuses: Iterable[str]) -> None:
        tally = Tally(statuses)
        for status in (*STATUSES, *(s for s in tally if s not in STATUSES)):
            self.vms.labels(status).set(tally.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
