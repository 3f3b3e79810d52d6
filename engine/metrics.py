"""The engine's Prometheus metrics, served at ``/metrics`` (prometheus-client).

One registry per application (not the library's global one), made at start-up and handed to
what records into it: the HTTP middleware, the host calls and the monitor.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class EngineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "engine_http_request_seconds", "API requests by route and status", ["method", "route", "status"],
            registry=r, buckets=_LATENCY_BUCKETS,
        )  # fmt: skip
        self.host_calls = Histogram(
            "engine_host_call_seconds", "Calls to hosts' agents by verb and outcome", ["verb", "outcome"],
            registry=r, buckets=_LATENCY_BUCKETS,
        )  # fmt: skip
        self.nic_results = Counter(
            "engine_nic_operations", "NIC plugs, unplugs and link changes that reached a host, by the agent's code",
            ["operation", "code"], registry=r,
        )  # fmt: skip
        self.monitor_cycle = Histogram(
            "engine_monitor_cycle_seconds", "One monitoring cycle over the hosts this engine watches",
            registry=r, buckets=_LATENCY_BUCKETS,
        )  # fmt: skip
        self.host_age = Gauge(
            "engine_host_report_age_seconds", "Seconds since each watched host last answered a poll", ["host"],
            registry=r,
        )  # fmt: skip
        self.hosts = Gauge("engine_hosts", "Hosts by status", ["status"], registry=r)
        self.vms = Gauge("engine_vms", "VMs by status", ["status"], registry=r)
        self.watched = Gauge("engine_watched_hosts", "Hosts this engine holds the monitoring lease of", registry=r)
        self.reconciled = Counter(
            "engine_reconciliation_changes", "Changes monitoring made to follow the hosts, by kind", ["kind"],
            registry=r,
        )  # fmt: skip
