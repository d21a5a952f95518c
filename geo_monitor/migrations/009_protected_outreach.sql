-- Police outreach tables (geo_monitor.privacy.protected): the first protected table of a month
-- is kept, so the same question always gets the same answer, even after late data arrive.
CREATE TABLE protected_outreach_months (
    month      date        NOT NULL,          -- first day of the month
    resolution integer     NOT NULL,
    k          integer     NOT NULL,
    cells      bigint[]    NOT NULL,          -- the partition's cells, in layout order
    shown      bigint[]    NOT NULL,          -- cells, then arrondissements, then the total; NULL = suppressed
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (month, resolution, k)
);
