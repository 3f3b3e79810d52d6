-- VMs name their kernel and initrd as files of the host's images directory, never by a path
-- (the agent no longer takes paths from the wire): a stored path keeps its file name.
UPDATE vms SET kernel = regexp_replace(kernel, '^.*/', ''), initrd = regexp_replace(initrd, '^.*/', '');
