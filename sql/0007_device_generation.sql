-- Every change the engine makes to a VM's devices bumps its device generation, so that host
-- monitoring (perhaps in another engine process) looks at a VM again after the engine's own
-- change even when the host's device hash has come back to a value it saw before (a NIC plugged
-- by the engine and removed behind its back between two polls).
ALTER TABLE vms ADD COLUMN device_generation bigint NOT NULL DEFAULT 0;
