-- No index on events.h3_r11: every count reads the rollups, a team's own counts and the
-- releases read (category, time) through events_category_time_idx, which carries h3_r11, and
-- no query looks events up by cell. The index cost ingest a random insertion per event, which
-- grows with the store (bench/growth.py: the 10M step's COPY into events).
DROP INDEX IF EXISTS events_h3_r11_idx;
