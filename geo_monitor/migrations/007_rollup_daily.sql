-- Daily hexagon counts, so a window that is not month-aligned reads its edge days here and
-- never the events: (resolution 7-11, Europe/Paris calendar day, category, cell) -> n.
-- rollup_monthly also holds resolution 11 from now on (filled by ingest and by `aggregate`).
-- Both are defined exactly in geo_monitor/store/rollups.py and kept in step with the events
-- inside each ingest transaction, like the monthly rollup.
CREATE TABLE rollup_daily (
    resolution  smallint NOT NULL,
    day         date     NOT NULL,  -- Europe/Paris calendar day of occurred_at
    category_id smallint NOT NULL,
    cell        bigint   NOT NULL,
    n           integer  NOT NULL,
    PRIMARY KEY (resolution, category_id, day, cell)
);

-- Category before time in both keys: a query names its categories and a range of periods, so
-- it reads only its categories' rows (time first, it read every category's and filtered).
ALTER TABLE rollup_monthly DROP CONSTRAINT rollup_monthly_pkey;
ALTER TABLE rollup_monthly ADD CONSTRAINT rollup_monthly_pkey PRIMARY KEY (resolution, category_id, month, cell);

-- The rollups are rebuilt on the next read (rollup_state says nothing is included yet), so a
-- store migrated with events in it serves the new tables complete.
UPDATE rollup_state SET last_batch_id = 0, events = 0;
