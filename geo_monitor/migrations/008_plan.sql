-- The 2019-2021 plan in the store: objectives, partners, actions (with planned budgets and
-- indicators), their append-only updates, and accommodation and rest capacity.
-- Places shelter vulnerable people: they are stored by arrondissement, never by street address.

CREATE TABLE plan_objectives (
    id       smallint PRIMARY KEY,
    code     text NOT NULL UNIQUE,
    title_fr text NOT NULL,
    title_en text NOT NULL
);
INSERT INTO plan_objectives (id, code, title_fr, title_en) VALUES
    (1, 'accompany', 'Accompagner les usagers, réduire les risques, ouvrir des parcours de soins',
                     'Accompany users, reduce risks, open care pathways'),
    (2, 'accommodation', 'Plus de places d''hébergement et de repos', 'More accommodation and rest places'),
    (3, 'public_space', 'Agir dans l''espace public, pour les usagers et pour les riverains',
                        'Act in public space, for users and for residents'),
    (4, 'knowledge', 'Mieux connaître les personnes et les lieux concernés',
                     'Know the people and places concerned better');

-- The partners who sign, fund or carry actions; a plan file may add more (operators).
CREATE TABLE plan_partners (
    code      text PRIMARY KEY CHECK (code ~ '^[a-z0-9_]{2,40}$'),
    name      text NOT NULL,
    signatory boolean NOT NULL DEFAULT false
);
INSERT INTO plan_partners (code, name, signatory) VALUES
    ('prefecture_idf', 'Préfecture de la région d''Île-de-France, préfecture de Paris', true),
    ('prefecture_police', 'Préfecture de police', true),
    ('ville_paris', 'Ville de Paris', true),
    ('ars_idf', 'Agence régionale de santé Île-de-France', true),
    ('mildeca', 'Mission interministérielle de lutte contre les drogues et les conduites addictives', true),
    ('parquet_paris', 'Parquet de Paris', true),
    ('ratp', 'RATP', false),
    ('aurore', 'Association Aurore', false);

CREATE TABLE plan_actions (
    id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,20}$'),
    objective_id smallint NOT NULL REFERENCES plan_objectives (id),
    title        text NOT NULL,
    lead_partner text NOT NULL REFERENCES plan_partners (code),
    starts_on    date,
    ends_on      date,
    source       text,          -- where the commitment was made (e.g. the press release of 27 May 2019)
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on)
);

CREATE TABLE plan_action_partners (
    action_id text NOT NULL REFERENCES plan_actions (id),
    partner   text NOT NULL REFERENCES plan_partners (code),
    PRIMARY KEY (action_id, partner)
);

-- Planned budget per action, funding partner and year (euros).
CREATE TABLE plan_budgets (
    action_id text     NOT NULL REFERENCES plan_actions (id),
    partner   text     NOT NULL REFERENCES plan_partners (code),
    year      smallint NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    amount    numeric(14, 2) NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (action_id, partner, year)
);

-- What an action promises to move: a unit, a target and the direction that counts as progress.
CREATE TABLE plan_indicators (
    action_id text NOT NULL REFERENCES plan_actions (id),
    code      text NOT NULL CHECK (code ~ '^[a-z0-9_]{1,40}$'),
    label     text NOT NULL,
    unit      text NOT NULL,
    target    numeric,
    direction text NOT NULL CHECK (direction IN ('up', 'down')),
    PRIMARY KEY (action_id, code)
);

-- The record of execution: append-only; a correction is a new row.
CREATE TABLE plan_updates (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id   text NOT NULL REFERENCES plan_actions (id),
    on_date     date NOT NULL,
    status      text NOT NULL CHECK (status IN ('planned', 'started', 'done', 'dropped')),
    committed   numeric(14, 2) CHECK (committed >= 0),
    spent       numeric(14, 2) CHECK (spent >= 0),
    payer       text REFERENCES plan_partners (code),
    indicator_values jsonb NOT NULL DEFAULT '{}',
    note        text,
    author      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    fingerprint bytea NOT NULL UNIQUE   -- the same update sent twice is stored once
);
CREATE INDEX plan_updates_action_idx ON plan_updates (action_id, on_date);

-- Accommodation and rest capacity. No address column, on purpose.
CREATE TABLE plan_places (
    id             text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,40}$'),
    type           text NOT NULL CHECK (type IN ('perennial_accommodation', 'hotel_shelter',
                                                 'specialised_housing', 'rest_space')),
    operator       text NOT NULL,
    places         integer NOT NULL CHECK (places >= 0),
    arrondissement integer NOT NULL CHECK (arrondissement BETWEEN 75101 AND 75120),
    opens_on       date NOT NULL,
    closes_on      date,
    action_id      text REFERENCES plan_actions (id),
    CHECK (closes_on IS NULL OR closes_on >= opens_on)
);

CREATE FUNCTION refuse_plan_update_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %: the plan''s updates are its record; add a new update instead',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER plan_updates_immutable BEFORE UPDATE OR DELETE ON plan_updates
    FOR EACH ROW EXECUTE FUNCTION refuse_plan_update_change();
CREATE TRIGGER plan_updates_no_truncate BEFORE TRUNCATE ON plan_updates
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_plan_update_change();
