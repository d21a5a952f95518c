-- No spatial index on events: a stored point is the centre of its resolution-11 cell, so
-- every spatial question is asked through cells (h3_r11 = ANY(cover of the polygon)).
-- The GiST index cost about 40 % of the server's time in a bulk COPY (bench/ingest.py).
DROP INDEX IF EXISTS events_geom_idx;
