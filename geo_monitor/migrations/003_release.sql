-- Public releases: immutable, versioned monthly snapshots, and the privacy-budget ledger.
-- Nothing here holds a true count, an event, a time finer than the month or a coordinate:
-- only noisy counts that passed disclosure control, per public hexagon and arrondissement.

CREATE TABLE releases (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    month             date NOT NULL CHECK (extract(day FROM month) = 1),  -- first day of the data month
    version           integer NOT NULL CHECK (version >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    resolution        smallint NOT NULL,
    k                 integer NOT NULL,
    tau               integer NOT NULL,            -- a hexagon is shown from this noisy count
    display_delta     double precision NOT NULL,   -- chance a count of 1..k-1 reaches its threshold
    epsilon           double precision NOT NULL,   -- the whole release (OpenDP composition map)
    epsilon_incidents double precision NOT NULL,
    epsilon_outreach  double precision NOT NULL,
    contributions     integer NOT NULL,            -- assumed events per person per month (the DP unit)
    scale_incidents   double precision NOT NULL,   -- discrete Laplace scale b of each query
    scale_outreach    double precision NOT NULL,
    mechanism         text NOT NULL,
    status            text NOT NULL DEFAULT 'published' CHECK (status = 'published'),
    UNIQUE (month, version)
);

-- One row per (public group, hexagon) of the fixed grid; value NULL when suppressed.
-- `reason` (primary/secondary) is for engineers only and is never served.
CREATE TABLE release_cells (
    release_id     bigint   NOT NULL REFERENCES releases (id),
    grp            text     NOT NULL,
    cell           bigint   NOT NULL,
    arrondissement integer  NOT NULL,
    value          integer,
    suppressed     boolean  NOT NULL,
    reason         text CHECK (reason IN ('primary', 'secondary')),
    PRIMARY KEY (release_id, grp, cell),
    CHECK ((value IS NULL) = suppressed AND (reason IS NULL) = NOT suppressed AND (value IS NULL OR value >= 0))
);

-- Arrondissement totals (arrondissement NULL = the whole study area) per group; outreach
-- appears only here. Totals are sums of the noisy hexagons (outreach: of the arrondissements).
CREATE TABLE release_totals (
    release_id     bigint   NOT NULL REFERENCES releases (id),
    grp            text     NOT NULL,
    arrondissement integer,
    value          integer,
    suppressed     boolean  NOT NULL,
    reason         text CHECK (reason IN ('primary', 'secondary')),
    threshold      integer  NOT NULL,  -- shown from this noisy value (depends on how many hexagons it sums)
    CHECK ((value IS NULL) = suppressed AND (reason IS NULL) = NOT suppressed AND (value IS NULL OR value >= 0))
);
CREATE UNIQUE INDEX release_totals_key ON release_totals (release_id, grp, coalesce(arrondissement, 0));

-- Works sites active during the month (public information, copied so the release never changes).
CREATE TABLE release_works (
    release_id bigint NOT NULL REFERENCES releases (id),
    site_id    text   NOT NULL,
    purpose    text,
    starts_on  date,
    ends_on    date,
    geom       geometry(MultiPolygon, 4326) NOT NULL,
    PRIMARY KEY (release_id, site_id)
);

-- Privacy loss spent, per query of each release, by data month (the budget is per month and per year).
CREATE TABLE privacy_ledger (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id    bigint NOT NULL REFERENCES releases (id),
    month         date NOT NULL,
    query         text NOT NULL,
    contributions integer NOT NULL,
    epsilon       double precision NOT NULL CHECK (epsilon > 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX privacy_ledger_month_idx ON privacy_ledger (month);

-- Immutability as a feature: a published release and the ledger are append-only. Changing a
-- number would let two answers be subtracted; deleting a ledger row would refund privacy loss.
CREATE FUNCTION refuse_release_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %: public releases and the privacy ledger are immutable; publish a new version instead',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['releases', 'release_cells', 'release_totals', 'release_works', 'privacy_ledger'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW '
                       'EXECUTE FUNCTION refuse_release_change()', t || '_immutable', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION refuse_release_change()', t || '_no_truncate', t);
    END LOOP;
END
$$;
