-- Access: API tokens (stored hashed), the audit log of fine-data reads, team ownership.
CREATE TABLE api_tokens (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  bytea       NOT NULL UNIQUE,  -- SHA-256 of a 256-bit random token
    prefix      text        NOT NULL,         -- first characters, to recognise a token in lists
    role        text        NOT NULL CHECK (role IN ('admin', 'planner', 'police', 'outreach')),
    team        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    description text
);

CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    token_id  integer,
    role      text        NOT NULL,
    team      text        NOT NULL,
    action    text        NOT NULL,
    params    jsonb       NOT NULL DEFAULT '{}',
    status    integer
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Which team a source belongs to: an outreach team reads its own team's records.
ALTER TABLE sources ADD COLUMN team text;
