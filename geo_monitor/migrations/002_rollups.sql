-- Monthly hexagon counts per served resolution (7-10): hex-count queries read whole
-- months here and only the partial months at a window's edges (and resolution 11) from
-- the events, through the covering index below.
-- Kept in step with events inside each ingest transaction; `rollup_state` records the
-- last batch included so a stale rollup is detected and rebuilt before it is served.
CREATE TABLE rollup_monthly (
    resolution  smallint NOT NULL,
    month       date     NOT NULL,  -- first day of the Europe/Paris calendar month
    category_id smallint NOT NULL,
    cell        bigint   NOT NULL,
    n           integer  NOT NULL,
    PRIMARY KEY (resolution, month, category_id, cell)
);

-- Edge months and resolution 11 read (category, time, fine cell) without touching the heap.
DROP INDEX events_category_time_idx;
CREATE INDEX events_category_time_idx ON events (category_id, occurred_at) INCLUDE (h3_r11);

CREATE TABLE rollup_state (
    id            smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_batch_id bigint      NOT NULL,
    events        bigint      NOT NULL,
    refreshed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollup_state (last_batch_id, events) VALUES (0, 0);

-- Residents per hexagon (IRIS population spread by area), per resolution.
CREATE TABLE hex_population (
    resolution smallint NOT NULL,
    cell       bigint   NOT NULL,
    population double precision NOT NULL,
    PRIMARY KEY (resolution, cell)
);

-- SQL parent of an H3 cell: set the resolution field and fill the finer digits with 7.
CREATE FUNCTION h3_parent(cell bigint, res integer) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (cell & ~(15::bigint << 52)) | (res::bigint << 52) | ((1::bigint << (3 * (15 - res))) - 1)
$$;
