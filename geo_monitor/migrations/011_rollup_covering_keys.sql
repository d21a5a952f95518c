-- The rollups' primary keys also carry n, so a count reads the index alone (an index-only
-- scan) instead of visiting a heap page for every row. At 10M events a year at resolution 11
-- with its edge days went from 640 ms to 235 ms: the edge days' rows lay scattered over the
-- heap (bench/growth.py's database, EXPLAIN ANALYZE). Index-only scans need the visibility
-- map that (auto)vacuum keeps; without it they still read the heap, as before.
ALTER TABLE rollup_daily DROP CONSTRAINT rollup_daily_pkey,
    ADD CONSTRAINT rollup_daily_pkey PRIMARY KEY (resolution, category_id, day, cell) INCLUDE (n);
ALTER TABLE rollup_monthly DROP CONSTRAINT rollup_monthly_pkey,
    ADD CONSTRAINT rollup_monthly_pkey PRIMARY KEY (resolution, category_id, month, cell) INCLUDE (n);
