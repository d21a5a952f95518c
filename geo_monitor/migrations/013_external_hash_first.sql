-- The unique (source, external hash) key with the hash first. The pair is unique either way,
-- and every look-up names both; but sorting for the index build compares the first column in
-- an abbreviated form, and a store has one source or a few, so with the source first every
-- comparison fell through to the hash. Building the key over 10M events (what a bulk load,
-- store.bulk_load, does at its end) took 22.8 s with the source first, 10.5 s with the hash.
ALTER TABLE events DROP CONSTRAINT events_external_unique;
ALTER TABLE events ADD CONSTRAINT events_external_unique UNIQUE (external_hash, source_id);
