-- The operations journal: every call that changes a host (plug, unplug, start, stop) is
-- recorded here, committed on its own, before the call goes out, and removed in the same
-- transaction that stores its result.  A row that outlives its use case is an operation whose
-- outcome the engine never stored (the engine or the agent died, the answer was lost): host
-- monitoring finds it, follows what the host really did, says so in the audit log and removes it.
-- No foreign keys: the use case holds its VM's row lock while a second connection writes here.
CREATE TABLE host_operations (
    id              uuid PRIMARY KEY,
    verb            text NOT NULL CHECK (verb IN ('plug', 'unplug', 'start', 'stop')),
    vm_id           uuid NOT NULL,
    nic_id          uuid,
    host_id         uuid NOT NULL,
    user_name       text NOT NULL,
    engine_id       text NOT NULL DEFAULT '',
    started_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX host_operations_host ON host_operations (host_id);
CREATE INDEX host_operations_vm ON host_operations (vm_id);
