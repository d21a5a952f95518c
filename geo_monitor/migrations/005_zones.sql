-- Coordination zones: who covers what, when. A zone is a polygon clipped to the study area,
-- owned by one team, shared with partner teams, with a weekly schedule of coverage.
-- Zones are never deleted (archived instead) and every change is kept in zone_history.
CREATE TABLE zones (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    owner_team    text NOT NULL,
    partner_teams text[] NOT NULL DEFAULT '{}',
    geom          geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom)),
    clipped_share double precision NOT NULL DEFAULT 0 CHECK (clipped_share >= 0 AND clipped_share < 1),
    -- [{"day": 0-6 (Monday = 0), "start": "HH:MM", "end": "HH:MM", "team": "..."}]; end <= start
    -- means the range runs past midnight into the next day.
    schedule      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(schedule) = 'array'),
    version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    archived_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text NOT NULL,  -- role:team
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    text NOT NULL
);
CREATE INDEX zones_geom_idx ON zones USING gist (geom);
CREATE INDEX zones_owner_idx ON zones (owner_team);
CREATE INDEX zones_partners_idx ON zones USING gin (partner_teams);

-- The H3 cover of each zone ("overlap": every cell touching the polygon, plus the parents of
-- the finest cover, as for the study grid), so zone counts are sums of hexagon counts.
CREATE TABLE zone_cells (
    zone_id    integer  NOT NULL REFERENCES zones (id),
    resolution smallint NOT NULL,
    cell       bigint   NOT NULL,
    PRIMARY KEY (zone_id, resolution, cell)
);
CREATE INDEX zone_cells_cell_idx ON zone_cells (resolution, cell);

-- Every change to a zone: who, when, the state before and after (GeoJSON geometry inside).
-- The state of a zone at a past instant is the `after` of its last change made by then.
CREATE TABLE zone_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    zone_id         integer     NOT NULL REFERENCES zones (id),
    version         integer     NOT NULL,
    action          text        NOT NULL CHECK (action IN ('create', 'update', 'archive')),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    changed_by_role text        NOT NULL,
    changed_by_team text        NOT NULL,
    token_id        integer,
    before          jsonb,
    after           jsonb       NOT NULL,
    UNIQUE (zone_id, version)
);
CREATE INDEX zone_history_at_idx ON zone_history (zone_id, changed_at);

-- History is append-only: a rewritten past would make "who changed what" meaningless.
CREATE FUNCTION refuse_zone_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on zone_history: the history of zones is append-only', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER zone_history_immutable BEFORE UPDATE OR DELETE ON zone_history
    FOR EACH ROW EXECUTE FUNCTION refuse_zone_history_change();
CREATE TRIGGER zone_history_no_truncate BEFORE TRUNCATE ON zone_history
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_zone_history_change();
