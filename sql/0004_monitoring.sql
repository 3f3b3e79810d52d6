-- Host monitoring: which engine watches which host (a lease, so that several engines on one
-- database split the hosts and take over those of an engine that died), what the hosts report
-- that the engine does not manage, and host events in the audit log.

CREATE TABLE host_leases (
    host_id         uuid PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    engine_id       text NOT NULL,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX host_leases_engine ON host_leases (engine_id);

-- NICs a host reports on a VM that the engine did not plug (virsh attach-interface, ...): shown,
-- never adopted or removed by the engine.
CREATE TABLE vm_unmanaged_nics (
    vm_id           uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    alias           text NOT NULL,
    mac_addr        macaddr NOT NULL,
    address         text NOT NULL DEFAULT '',
    first_seen      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vm_id, alias, mac_addr)
);

ALTER TABLE hosts ADD COLUMN last_seen timestamptz;
ALTER TABLE audit_log ADD COLUMN host_id uuid;
ALTER TABLE audit_log ADD COLUMN host_name text NOT NULL DEFAULT '';
CREATE INDEX vms_run_on_host ON vms (run_on_host_id) WHERE run_on_host_id IS NOT NULL;
