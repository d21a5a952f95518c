-- The event store, its vocabulary, ingest batches and the reference layers.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE kinds (
    id   smallint PRIMARY KEY,
    name text NOT NULL UNIQUE
);
INSERT INTO kinds (id, name) VALUES (1, 'incident'), (2, 'outreach'), (3, 'works');

CREATE TABLE categories (
    id      smallint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind_id smallint NOT NULL REFERENCES kinds (id),
    name    text NOT NULL,
    UNIQUE (kind_id, name)
);

CREATE TABLE sources (
    id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE
);

CREATE TABLE ingest_batches (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_name          text NOT NULL,
    file_sha256        text,
    format             text NOT NULL,
    actor              text NOT NULL,
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz NOT NULL,
    received           integer NOT NULL,
    accepted           integer NOT NULL,
    duplicates         integer NOT NULL,
    rejected           integer NOT NULL,
    rejected_by_reason jsonb NOT NULL DEFAULT '{}'
);

-- One row per anonymised event. The point is the centre of its H3 cell at the
-- configured point resolution and the time is truncated to the hour (DESIGN.md).
-- No foreign keys here: their per-row triggers cost more than the rest of a bulk
-- COPY; ingest resolves kind, category, source and batch ids before writing.
CREATE TABLE events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind_id       smallint NOT NULL,
    category_id   smallint NOT NULL,
    occurred_at   timestamptz NOT NULL,
    ends_at       timestamptz,
    geom          geometry(Point, 4326) NOT NULL,
    h3_r7         bigint NOT NULL,
    h3_r8         bigint NOT NULL,
    h3_r9         bigint NOT NULL,
    h3_r10        bigint NOT NULL,
    h3_r11        bigint NOT NULL,
    arrondissement integer NOT NULL,
    quartier      integer NOT NULL,
    source_id     integer NOT NULL,
    external_hash bytea NOT NULL,
    batch_id      bigint NOT NULL,
    CONSTRAINT events_ends_after_start CHECK (ends_at IS NULL OR ends_at >= occurred_at),
    CONSTRAINT events_external_unique UNIQUE (source_id, external_hash)
);
-- Few indexes: each costs ingest speed, and hexagon counts come from rollups.
-- Category slices over time, fine-cell drill-downs (zones), plain spatial queries.
CREATE INDEX events_category_time_idx ON events (category_id, occurred_at);
CREATE INDEX events_h3_r11_idx ON events (h3_r11);
CREATE INDEX events_geom_idx ON events USING gist (geom);

-- Reference layers (official open data, loaded by `geo-monitor reference load`).
CREATE TABLE reference_loads (
    layer       text PRIMARY KEY,
    file_name   text NOT NULL,
    file_sha256 text NOT NULL,
    features    integer NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE arrondissements (
    code   integer PRIMARY KEY,          -- INSEE, e.g. 75119
    number smallint NOT NULL,
    name   text NOT NULL,
    geom   geometry(MultiPolygon, 4326) NOT NULL
);

CREATE TABLE quartiers (
    code           integer PRIMARY KEY,  -- INSEE, e.g. 7511903
    arrondissement integer NOT NULL,
    name           text NOT NULL,
    geom           geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX quartiers_geom_idx ON quartiers USING gist (geom);

CREATE TABLE study_area (
    id    smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    codes integer[] NOT NULL,
    geom  geometry(MultiPolygon, 4326) NOT NULL
);

CREATE TABLE iris (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label          text NOT NULL,
    arrondissement integer,
    population     integer NOT NULL,
    geom           geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX iris_geom_idx ON iris USING gist (geom);

CREATE TABLE stations (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station_id     text NOT NULL,
    name           text NOT NULL,
    line           text NOT NULL,
    mode           text NOT NULL,
    arrondissement integer,
    geom           geometry(Point, 4326) NOT NULL
);
CREATE INDEX stations_geom_idx ON stations USING gist (geom);

CREATE TABLE rail_lines (
    id     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    line   text NOT NULL,
    mode   text NOT NULL,
    colour text,
    geom   geometry(MultiLineString, 4326) NOT NULL
);

CREATE TABLE works_sites (
    id             text PRIMARY KEY,     -- official identifier, e.g. CP000617
    arrondissement integer,
    street         text,
    purpose        text,
    owner          text,
    starts_at      timestamptz,
    ends_at        timestamptz,
    geom           geometry(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX works_sites_geom_idx ON works_sites USING gist (geom);
