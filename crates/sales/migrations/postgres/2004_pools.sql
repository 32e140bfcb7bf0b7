-- The shared pool (公海): leads nobody holds, per team or for the whole company (at most one
-- of each). Reps claim from it within limits; leads return to it by rules (no follow-up for N
-- days — per grade if set — or not converted within N days). Every claim, release, return and
-- assignment is an event.
CREATE TABLE pools (
    tenant_id          UUID NOT NULL REFERENCES tenants(id),
    id                 UUID NOT NULL,
    name               TEXT NOT NULL,
    team_id            UUID,
    claim_per_day      BIGINT CHECK (claim_per_day IS NULL OR claim_per_day >= 0),
    max_held           BIGINT CHECK (max_held IS NULL OR max_held >= 0),
    reclaim_wait_days  BIGINT NOT NULL CHECK (reclaim_wait_days >= 0),
    return_days        BIGINT CHECK (return_days IS NULL OR return_days > 0),
    grade_days         JSONB NOT NULL DEFAULT '{}',
    unconverted_days   BIGINT CHECK (unconverted_days IS NULL OR unconverted_days > 0),
    active             BOOLEAN NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    version            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX pools_team ON pools (tenant_id, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX pools_company ON pools (tenant_id) WHERE team_id IS NULL;

CREATE TABLE pool_events (
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    id        UUID NOT NULL,
    pool_id   UUID NOT NULL,
    lead_id   UUID NOT NULL,
    user_id   UUID,
    action    TEXT NOT NULL CHECK (action IN ('claim', 'release', 'return', 'assign')),
    reason    TEXT,
    at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id)
);
CREATE INDEX pool_events_user ON pool_events (tenant_id, user_id, action, at);
CREATE INDEX pool_events_lead ON pool_events (tenant_id, lead_id, at);
CREATE INDEX leads_pool ON leads (tenant_id, pool_id, id) WHERE pool_id IS NOT NULL;
CREATE INDEX leads_held ON leads (tenant_id, team_id, updated_at) WHERE owner_id IS NOT NULL AND deleted_at IS NULL;
