-- Disks of VMs (oVirt's disk attachments, a minimal subset): each disk is an image file of the
-- hosts' images directory, named by its file name (never a path), raw or qcow2 ('cow', VDSM's
-- name), on virtio; attached to one VM; the attachment's id is the disk's, as in oVirt.
CREATE TABLE vm_disks (
    id          uuid PRIMARY KEY,
    vm_id       uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name <> '' AND name !~ '/'),
    format      text NOT NULL CHECK (format IN ('raw', 'cow')),
    interface   text NOT NULL DEFAULT 'virtio' CHECK (interface = 'virtio'),
    bootable    boolean NOT NULL DEFAULT false,
    read_only   boolean NOT NULL DEFAULT false,
    UNIQUE (vm_id, name)
);
CREATE INDEX vm_disks_vm ON vm_disks (vm_id);
-- oVirt's rule: one bootable disk per VM.
CREATE UNIQUE INDEX vm_disks_one_bootable ON vm_disks (vm_id) WHERE bootable;
