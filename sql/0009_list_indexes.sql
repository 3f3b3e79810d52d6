-- Lists that stay fast as the data grows (benchmarks/scale.py): a VM's devices by VM, and names
-- searched case-insensitively with a fixed prefix (name=web*, name=web-01) by index.
CREATE INDEX vm_device_vm ON vm_device (vm_id);
CREATE INDEX vms_lower_name ON vms (lower(name) text_pattern_ops);
CREATE INDEX hosts_lower_name ON hosts (lower(name) text_pattern_ops);
