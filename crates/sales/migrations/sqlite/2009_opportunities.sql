-- Pipelines: a tenant's sales processes, each an ordered list of stages with a default
-- probability and a forecast category (pipeline, best case, commit, won, lost). How deals may
-- move (any stage, or forward only; whether a closed deal may reopen) is the pipeline's.
CREATE TABLE pipelines (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    name        TEXT NOT NULL,
    moves       TEXT NOT NULL CHECK (moves IN ('any', 'forward')),
    may_reopen  INTEGER NOT NULL,
    is_default  INTEGER NOT NULL,
    active      INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX pipelines_name ON pipelines (tenant_id, name);
CREATE UNIQUE INDEX pipelines_default ON pipelines (tenant_id) WHERE is_default = 1;

CREATE TABLE pipeline_stages (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    id              BLOB NOT NULL,
    pipeline_id     BLOB NOT NULL,
    name            TEXT NOT NULL,
    position        INTEGER NOT NULL,
    probability     INTEGER NOT NULL CHECK (probability BETWEEN 0 AND 100),
    category        TEXT NOT NULL CHECK (category IN ('pipeline', 'best_case', 'commit', 'won', 'lost')),
    required_fields TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pipeline_id) REFERENCES pipelines (tenant_id, id)
);
CREATE UNIQUE INDEX pipeline_stages_position ON pipeline_stages (tenant_id, pipeline_id, position);

-- Opportunities (deals): an account's possible sale, in one pipeline's stage. `status` follows
-- the stage's category (won, lost, else open). The shared record columns give them the record
-- machinery. Amounts are minor units (fen).
CREATE TABLE opportunities (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    id              BLOB NOT NULL,
    name            TEXT NOT NULL,
    account_id      BLOB NOT NULL,
    contact_id      BLOB,
    pipeline_id     BLOB NOT NULL,
    stage_id        BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    currency        TEXT NOT NULL,
    probability     INTEGER NOT NULL CHECK (probability BETWEEN 0 AND 100),
    expected_close  TEXT,
    close_reason    TEXT,
    closed_at       TEXT,
    stage_since     TEXT NOT NULL,
    position        REAL NOT NULL,
    lead_id         BLOB,
    description     TEXT,
    owner_id        BLOB NOT NULL,
    team_id         BLOB,
    search          TEXT NOT NULL,
    grams           TEXT,
    era             INTEGER NOT NULL DEFAULT 0,
    custom          TEXT NOT NULL,
    tags            TEXT NOT NULL DEFAULT '[]',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    created_by      BLOB,
    updated_by      BLOB,
    version         INTEGER NOT NULL,
    deleted_at      TEXT,
    name_key TEXT GENERATED ALWAYS AS (substr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), 1, instr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), '|') - 1) || '|' || substr(substr(search, 2), 1, instr(substr(search, 2), '|') - 1)) VIRTUAL,
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

CREATE VIRTUAL TABLE opportunities_fts USING fts5(grams, content='opportunities', content_rowid='rowid');
CREATE TRIGGER opportunities_fts_insert AFTER INSERT ON opportunities BEGIN
    INSERT INTO opportunities_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;
CREATE TRIGGER opportunities_fts_delete AFTER DELETE ON opportunities BEGIN
    INSERT INTO opportunities_fts (opportunities_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
END;
CREATE TRIGGER opportunities_fts_update AFTER UPDATE OF grams ON opportunities BEGIN
    INSERT INTO opportunities_fts (opportunities_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
    INSERT INTO opportunities_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;

-- Append-only: every change of stage, amount, probability or expected close date (who, when,
-- from → to). Time in stage and slipped close dates are read from it.
CREATE TABLE opportunity_history (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    id             BLOB NOT NULL,
    opportunity_id BLOB NOT NULL,
    field          TEXT NOT NULL CHECK (field IN ('stage', 'amount', 'probability', 'expected_close')),
    from_value     TEXT,
    to_value       TEXT,
    user_id        BLOB,
    at             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, opportunity_id) REFERENCES opportunities (tenant_id, id)
);
CREATE INDEX opportunity_history_of ON opportunity_history (tenant_id, opportunity_id, at, id);
