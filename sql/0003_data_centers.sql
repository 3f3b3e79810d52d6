-- oVirt's object model: a cluster belongs to a data center; a network belongs to a data center
-- and is attached to some of its clusters (cluster_networks); a VM's NICs may use the networks
-- attached to its cluster.  Today's cluster-scoped networks move without loss: each cluster gets
-- a data center of its own (named after it), its networks move there and stay attached to it.

CREATE TABLE data_centers (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name <> ''),
    description     text NOT NULL DEFAULT ''
);

ALTER TABLE clusters ADD COLUMN data_center_id uuid REFERENCES data_centers (id);
INSERT INTO data_centers (id, name, description)
    SELECT id, name, 'made for cluster ' || name || ' when data centers came' FROM clusters;
UPDATE clusters SET data_center_id = id;
ALTER TABLE clusters ALTER COLUMN data_center_id SET NOT NULL;

ALTER TABLE networks ADD COLUMN data_center_id uuid REFERENCES data_centers (id) ON DELETE CASCADE;
UPDATE networks n SET data_center_id = c.data_center_id FROM clusters c WHERE c.id = n.cluster_id;
ALTER TABLE networks ALTER COLUMN data_center_id SET NOT NULL;

CREATE TABLE cluster_networks (
    cluster_id      uuid NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    network_id      uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    PRIMARY KEY (cluster_id, network_id)
);
INSERT INTO cluster_networks (cluster_id, network_id) SELECT cluster_id, id FROM networks;

ALTER TABLE networks DROP CONSTRAINT networks_cluster_id_name_key;
ALTER TABLE networks DROP COLUMN cluster_id;
ALTER TABLE networks ADD CONSTRAINT networks_data_center_id_name_key UNIQUE (data_center_id, name);
CREATE INDEX cluster_networks_network ON cluster_networks (network_id);
CREATE INDEX clusters_data_center ON clusters (data_center_id);
