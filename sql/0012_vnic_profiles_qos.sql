-- vNIC profiles as oVirt's (a description, SR-IOV pass-through, a network QoS) and network QoS
-- entries of a data center (oVirt's /datacenters/{id}/qoss, type network).  Rates are oVirt's
-- units: average and peak in Mbps, burst in MB; per direction all three are given or none.
CREATE TABLE network_qos (
    id               uuid PRIMARY KEY,
    data_center_id   uuid NOT NULL REFERENCES data_centers (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (name <> ''),
    description      text NOT NULL DEFAULT '',
    inbound_average  integer CHECK (inbound_average > 0),
    inbound_peak     integer CHECK (inbound_peak >= inbound_average),
    inbound_burst    integer CHECK (inbound_burst > 0),
    outbound_average integer CHECK (outbound_average > 0),
    outbound_peak    integer CHECK (outbound_peak >= outbound_average),
    outbound_burst   integer CHECK (outbound_burst > 0),
    UNIQUE (data_center_id, name),
    CHECK (num_nulls(inbound_average, inbound_peak, inbound_burst) IN (0, 3)),
    CHECK (num_nulls(outbound_average, outbound_peak, outbound_burst) IN (0, 3))
);
CREATE INDEX network_qos_data_center ON network_qos (data_center_id);

ALTER TABLE vnic_profiles ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE vnic_profiles ADD COLUMN pass_through boolean NOT NULL DEFAULT false;
-- A QoS in use by a profile cannot be removed (the engine says so first).
ALTER TABLE vnic_profiles ADD COLUMN qos_id uuid REFERENCES network_qos (id);
ALTER TABLE vnic_profiles ADD CONSTRAINT vnic_profiles_pass_through_alone
    CHECK (NOT pass_through OR (NOT port_mirroring AND qos_id IS NULL));
CREATE INDEX vnic_profiles_qos ON vnic_profiles (qos_id);
CREATE INDEX vm_interface_vnic_profile ON vm_interface (vnic_profile_id);
