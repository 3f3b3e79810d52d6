-- A NIC's link state changes on a running VM without an unplug (VM.updateDevice): that call
-- changes a host too, so it is journaled like plug and unplug, as verb 'update'.
ALTER TABLE host_operations DROP CONSTRAINT host_operations_verb_check;
ALTER TABLE host_operations ADD CONSTRAINT host_operations_verb_check
    CHECK (verb IN ('plug', 'unplug', 'update', 'start', 'stop'));
