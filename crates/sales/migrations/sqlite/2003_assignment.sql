-- Assignment: rules in order, each with conditions on the lead (region, industry, product,
-- source, score…) and a target — one user, a team in turn (round robin: `last_user_id` is
-- where the turn stands), or the team's least-loaded member. A rep's capacity (库容: at most
-- this many open leads and accounts) and leave are respected by every rule.
CREATE TABLE assignment_rules (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    conditions   TEXT NOT NULL,
    target       TEXT NOT NULL CHECK (target IN ('user', 'round_robin', 'least_loaded')),
    user_id      BLOB,
    team_id      BLOB,
    last_user_id BLOB,
    active       INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((target = 'user') = (user_id IS NOT NULL)),
    CHECK (target = 'user' OR team_id IS NOT NULL),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE INDEX assignment_rules_order ON assignment_rules (tenant_id, position, id);

CREATE TABLE rep_capacity (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    user_id    BLOB NOT NULL,
    capacity   INTEGER CHECK (capacity IS NULL OR capacity >= 0),
    on_leave   INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

-- Scoring: why a lead scores what it does (the rules that matched and their points).
ALTER TABLE leads ADD COLUMN score_reasons TEXT NOT NULL DEFAULT '[]';
CREATE TABLE scoring_rules (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    id         BLOB NOT NULL,
    name       TEXT NOT NULL,
    conditions TEXT NOT NULL,
    points     INTEGER NOT NULL CHECK (points BETWEEN -100 AND 100),
    active     INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX leads_owner_open ON leads (tenant_id, owner_id, status) WHERE deleted_at IS NULL;
