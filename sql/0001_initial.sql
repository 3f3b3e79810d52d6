-- The engine's data model: the oVirt objects a NIC hot-plug touches.
-- Constraints here are the last guard; the engine validates before it writes.

CREATE TABLE clusters (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    compat_major    integer NOT NULL CHECK (compat_major >= 0),
    compat_minor    integer NOT NULL CHECK (compat_minor >= 0),
    description     text NOT NULL DEFAULT ''
);

CREATE TABLE hosts (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    cluster_id      uuid NOT NULL REFERENCES clusters (id),
    address         text NOT NULL,
    port            integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    status          text NOT NULL DEFAULT 'up'
                    CHECK (status IN ('up', 'maintenance', 'non_responsive', 'down')),
    UNIQUE (address, port)
);

CREATE TABLE networks (
    id              uuid PRIMARY KEY,
    cluster_id      uuid NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (name <> ''),
    bridge          text NOT NULL CHECK (bridge ~ '^[A-Za-z0-9_.-]{1,15}$'),
    UNIQUE (cluster_id, name)
);

CREATE TABLE vnic_profiles (
    id              uuid PRIMARY KEY,
    network_id      uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (name <> ''),
    port_mirroring  boolean NOT NULL DEFAULT false,
    UNIQUE (network_id, name)
);

CREATE TABLE vms (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    cluster_id      uuid NOT NULL REFERENCES clusters (id),
    os_type         text NOT NULL,
    status          text NOT NULL DEFAULT 'down'
                    CHECK (status IN ('down', 'powering_up', 'up', 'powering_down',
                                      'paused', 'migrating', 'not_responding')),
    run_on_host_id  uuid REFERENCES hosts (id),
    memory_bytes    bigint NOT NULL CHECK (memory_bytes > 0),
    kernel          text NOT NULL DEFAULT '',
    initrd          text NOT NULL DEFAULT '',
    cmdline         text NOT NULL DEFAULT '',
    CHECK (status = 'down' OR run_on_host_id IS NOT NULL)
);

-- Every device of a VM.  A NIC is a row here (type 'interface') plus a row in vm_interface.
-- address is the canonical PCI address text ('pci:0000:00:03.0'), '' when none is known.
CREATE TABLE vm_device (
    device_id       uuid PRIMARY KEY,
    vm_id           uuid NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    type            text NOT NULL,
    device          text NOT NULL,
    address         text NOT NULL DEFAULT '',
    boot_order      integer NOT NULL DEFAULT 0 CHECK (boot_order >= 0),
    spec_params     jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_managed      boolean NOT NULL DEFAULT true,
    is_plugged      boolean NOT NULL DEFAULT false,
    alias           text NOT NULL DEFAULT '',
    custom_properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (device_id, vm_id)
);
-- Two plugged devices of one VM can never hold the same PCI slot.
CREATE UNIQUE INDEX vm_device_plugged_address_key
    ON vm_device (vm_id, address) WHERE is_plugged AND address <> '';

CREATE TABLE vm_interface (
    id              uuid PRIMARY KEY,
    vm_id           uuid NOT NULL,
    name            text NOT NULL CHECK (name <> ''),
    mac_addr        macaddr NOT NULL,
    model           text NOT NULL CHECK (model IN ('virtio', 'e1000', 'e1000e', 'rtl8139')),
    vnic_profile_id uuid REFERENCES vnic_profiles (id),
    linked          boolean NOT NULL DEFAULT true,
    FOREIGN KEY (id, vm_id) REFERENCES vm_device (device_id, vm_id) ON DELETE CASCADE,
    UNIQUE (vm_id, name),
    UNIQUE (mac_addr)
);

-- The seed's Model section: a NIC is 'active' when its device is plugged.
CREATE VIEW vm_interface_view AS
SELECT i.id, i.vm_id, i.name, i.mac_addr, i.model, i.vnic_profile_id, i.linked,
       d.is_plugged AS active, d.address, d.alias, d.boot_order, d.spec_params,
       p.name AS vnic_profile_name, n.id AS network_id, n.name AS network_name, n.bridge
FROM vm_interface i
JOIN vm_device d ON d.device_id = i.id
LEFT JOIN vnic_profiles p ON p.id = i.vnic_profile_id
LEFT JOIN networks n ON n.id = p.network_id;

CREATE TABLE mac_pool_ranges (
    id              serial PRIMARY KEY,
    from_mac        macaddr NOT NULL,
    to_mac          macaddr NOT NULL,
    CHECK (from_mac <= to_mac)
);
INSERT INTO mac_pool_ranges (from_mac, to_mac) VALUES ('56:6f:1a:00:00:00', '56:6f:1a:00:ff:ff');

CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    log_time        timestamptz NOT NULL DEFAULT now(),
    log_type        integer NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('normal', 'warning', 'error')),
    message         text NOT NULL,
    user_name       text NOT NULL DEFAULT '',
    vm_id           uuid,
    vm_name         text NOT NULL DEFAULT '',
    nic_id          uuid,
    nic_name        text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_vm_time ON audit_log (vm_id, log_time);
