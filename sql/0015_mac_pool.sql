-- The MAC pool's own fields (oVirt's MacPool): its name and description.  This engine has one pool,
-- oVirt's Default one, so this table holds exactly one row; the pool's ranges stay in
-- mac_pool_ranges (0001) and its cursor in mac_pool_cursor (0014).  The pool's id is a constant of
-- the engine (engine/domain/macpool.py DEFAULT_POOL_ID) and is not stored: nothing refers to it.
-- It never allows duplicate MACs (vm_interface's unique MAC), so there is no column for that either.
CREATE TABLE mac_pool (
    one_row         boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    name            text NOT NULL CHECK (name <> ''),
    description     text NOT NULL DEFAULT ''
);
INSERT INTO mac_pool (name) VALUES ('Default');
