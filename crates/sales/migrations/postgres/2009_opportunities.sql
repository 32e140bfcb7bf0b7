-- Pipelines: a tenant's sales processes, each an ordered list of stages with a default
-- probability and a forecast category (pipeline, best case, commit, won, lost). How deals may
-- move (any stage, or forward only; whether a closed deal may reopen) is the pipeline's.
CREATE TABLE pipelines (
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    id          UUID NOT NULL,
    name        TEXT NOT NULL,
    moves       TEXT NOT NULL CHECK (moves IN ('any', 'forward')),
    may_reopen  BOOLEAN NOT NULL,
    is_default  BOOLEAN NOT NULL,
    active      BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX pipelines_name ON pipelines (tenant_id, name);
CREATE UNIQUE INDEX pipelines_default ON pipelines (tenant_id) WHERE is_default;

CREATE TABLE pipeline_stages (
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    id              UUID NOT NULL,
    pipeline_id     UUID NOT NULL,
    name            TEXT NOT NULL,
    position        BIGINT NOT NULL,
    probability     BIGINT NOT NULL CHECK (probability BETWEEN 0 AND 100),
    category        TEXT NOT NULL CHECK (category IN ('pipeline', 'best_case', 'commit', 'won', 'lost')),
    required_fields JSONB NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id)
);
CREATE UNIQUE INDEX pipeline_stages_position ON pipeline_stages (tenant_id, pipeline_id, position);

-- Opportunities (deals): an account's possible sale, in one pipeline's stage. `status` follows
-- the stage's category (won, lost, else open). The shared record columns give them the record
-- machinery. Amounts are minor units (fen).
CREATE TABLE opportunities (
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    id              UUID NOT NULL,
    name            TEXT NOT NULL,
    account_id      UUID NOT NULL,
    contact_id      UUID,
    pipeline_id     UUID NOT NULL,
    stage_id        UUID NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    currency        TEXT NOT NULL,
    probability     BIGINT NOT NULL CHECK (probability BETWEEN 0 AND 100),
    expected_close  TEXT,
    close_reason    TEXT,
    closed_at       TIMESTAMPTZ,
    stage_since     TIMESTAMPTZ NOT NULL,
    position        DOUBLE PRECISION NOT NULL,
    lead_id         UUID,
    description     TEXT,
    owner_id        UUID NOT NULL,
    team_id         UUID,
    search          TEXT NOT NULL,
    grams           TEXT,
    era             BIGINT NOT NULL DEFAULT 0,
    custom          JSONB NOT NULL,
    tags            JSONB NOT NULL DEFAULT '[]',
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    created_by      UUID,
    updated_by      UUID,
    version         BIGINT NOT NULL,
    deleted_at      TIMESTAMPTZ,
    name_key TEXT GENERATED ALWAYS AS (split_part(search, '|', 3) || '|' || split_part(search, '|', 2)) STORED,
    PRIMARY KEY (tenant_id, id),
    CHECK ((status = 'open') = (closed_at IS NULL)),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id),
    FOREIGN KEY (tenant_id, stage_id) REFERENCES pipeline_stages (tenant_id, id),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE INDEX opportunities_updated ON opportunities (tenant_id, updated_at, id);
CREATE INDEX opportunities_created ON opportunities (tenant_id, created_at, id);
CREATE INDEX opportunities_owner ON opportunities (tenant_id, owner_id);
CREATE INDEX opportunities_account ON opportunities (tenant_id, account_id);
CREATE INDEX opportunities_board ON opportunities (tenant_id, stage_id, position, id) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_close ON opportunities (tenant_id, status, expected_close);
CREATE INDEX opportunities_name_key ON opportunities (tenant_id, name_key, id);
CREATE UNIQUE INDEX opportunities_lead ON opportunities (tenant_id, lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX opportunities_grams ON opportunities USING gin (string_to_array(grams, ' '));
CREATE INDEX opportunities_era_grams ON opportunities
    USING gin (string_to_array(era::text || ':' || replace(grams, ' ', ' ' || era::text || ':'), ' '));
ALTER INDEX opportunities_era_grams ALTER COLUMN 1 SET STATISTICS 0;

-- Append-only: every change of stage, amount, probability or expected close date (who, when,
-- from → to). Time in stage and slipped close dates are read from it.
CREATE TABLE opportunity_history (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    id             UUID NOT NULL,
    opportunity_id UUID NOT NULL,
    field          TEXT NOT NULL CHECK (field IN ('stage', 'amount', 'probability', 'expected_close')),
    from_value     TEXT,
    to_value       TEXT,
    user_id        UUID,
    at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, opportunity_id) REFERENCES opportunities (tenant_id, id)
);
CREATE INDEX opportunity_history_of ON opportunity_history (tenant_id, opportunity_id, at, id);
