-- The shared pool (公海): leads nobody holds, per team or for the whole company (at most one
-- of each). Reps claim from it within limits; leads return to it by rules (no follow-up for N
-- days — per grade if set — or not converted within N days). Every claim, release, return and
-- assignment is an event.
CREATE TABLE pools (
    tenant_id          BLOB NOT NULL REFERENCES tenants (id),
    id                 BLOB NOT NULL,
    name               TEXT NOT NULL,
    team_id            BLOB,
    claim_per_day      INTEGER CHECK (claim_per_day IS NULL OR claim_per_day >= 0),
    max_held           INTEGER CHECK (max_held IS NULL OR max_held >= 0),
    reclaim_wait_days  INTEGER NOT NULL CHECK (reclaim_wait_days >= 0),
    return_days        INTEGER CHECK (return_days IS NULL OR return_days > 0),
    grade_days         TEXT NOT NULL DEFAULT '{}',
    unconverted_days   INTEGER CHECK (unconverted_days IS NULL OR unconverted_days > 0),
    active             INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    version            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX pools_team ON pools (tenant_id, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX pools_company ON pools (tenant_id) WHERE team_id IS NULL;

CREATE TABLE pool_events (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    id        BLOB NOT NULL,
    pool_id   BLOB NOT NULL,
    lead_id   BLOB NOT NULL,
    user_id   BLOB,
    action    TEXT NOT NULL CHECK (action IN ('claim', 'release', 'return', 'assign')),
    reason    TEXT,
    at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id)
);
CREATE INDEX pool_events_user ON pool_events (tenant_id, user_id, action, at);
CREATE INDEX pool_events_lead ON pool_events (tenant_id, lead_id, at);
CREATE INDEX leads_pool ON leads (tenant_id, pool_id, id) WHERE pool_id IS NOT NULL;
CREATE INDEX leads_held ON leads (tenant_id, team_id, updated_at) WHERE owner_id IS NOT NULL AND deleted_at IS NULL;
