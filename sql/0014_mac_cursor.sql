-- The MAC pool's cursor: the offset, across the pool's ranges in id order, of the next MAC to
-- hand out.  A sequence, because nextval never waits for another transaction: concurrent adds
-- (in any engine) each get their own candidate instead of all trying the MAC after the highest
-- in use and queueing on its unique index.  A value taken by a transaction that rolls back is
-- skipped, as oVirt's pool moves on; gaps are handed out once the ranges are used to their end.
CREATE SEQUENCE mac_pool_cursor AS bigint MINVALUE 0 START 0;
