-- Service desk: tickets with the record machinery's shared columns, their messages (public
-- replies, internal notes, the customer's words), their append-only event log (from which the
-- SLA clocks are derived), SLA policies, and each target's evaluation (kept for reports).

-- SLA policies: the first active one (by position) whose conditions match a ticket applies.
-- An empty condition list matches anything. Targets in business minutes on a calendar (the
-- named one, else the ticket's team's, else the company's).
CREATE TABLE sla_policies (
    tenant_id              BLOB NOT NULL REFERENCES tenants (id),
    id                     BLOB NOT NULL,
    name                   TEXT NOT NULL,
    position               INTEGER NOT NULL,
    active                 INTEGER NOT NULL,
    priorities             TEXT NOT NULL DEFAULT '[]',
    grades                 TEXT NOT NULL DEFAULT '[]',
    categories             TEXT NOT NULL DEFAULT '[]',
    first_response_minutes INTEGER CHECK (first_response_minutes > 0),
    next_response_minutes  INTEGER CHECK (next_response_minutes > 0),
    resolution_minutes     INTEGER CHECK (resolution_minutes > 0),
    warn_minutes           INTEGER NOT NULL CHECK (warn_minutes >= 0),
    raise_priority         INTEGER NOT NULL,
    calendar_id            BLOB,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    version                INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, calendar_id) REFERENCES calendars (tenant_id, id)
);
CREATE UNIQUE INDEX sla_policies_name ON sla_policies (tenant_id, name);

CREATE TABLE tickets (
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    id               BLOB NOT NULL,
    number           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    description      TEXT,
    account_id       BLOB,
    contact_id       BLOB,
    asset_id         BLOB,
    category         TEXT,
    priority         TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'portal', 'form', 'phone', 'api', 'manual')),
    status           TEXT NOT NULL CHECK (status IN ('new', 'open', 'waiting_customer', 'waiting_third_party', 'resolved', 'closed')),
    parent_id        BLOB,
    merged_into_id   BLOB,
    first_replied_at TEXT,
    resolved_at      TEXT,
    closed_at        TEXT,
    reopened         INTEGER NOT NULL DEFAULT 0,
    sla_policy_id    BLOB,
    sla_due_at       TEXT,
    sla_breached     INTEGER NOT NULL DEFAULT 0,
    -- The next due time in seconds since 1970 (no clock running: far in the future), the
    -- queue's order.
    sla_due_key      INTEGER NOT NULL DEFAULT 99999999999,
    owner_id         BLOB,
    team_id          BLOB,
    search           TEXT NOT NULL,
    grams            TEXT,
    era              INTEGER NOT NULL DEFAULT 0,
    custom           TEXT NOT NULL,
    tags             TEXT NOT NULL DEFAULT '[]',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    created_by       BLOB,
    updated_by       BLOB,
    version          INTEGER NOT NULL,
    deleted_at       TEXT,
    name_key TEXT GENERATED ALWAYS AS (substr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), 1, instr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), '|') - 1) || '|' || substr(substr(search, 2), 1, instr(substr(search, 2), '|') - 1)) VIRTUAL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL)),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CHECK (merged_into_id IS NULL OR status = 'closed'),
    CHECK (parent_id IS NULL OR parent_id <> id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, merged_into_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, sla_policy_id) REFERENCES sla_policies (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX tickets_number ON tickets (tenant_id, number);
CREATE INDEX tickets_updated ON tickets (tenant_id, updated_at, id);
CREATE INDEX tickets_created ON tickets (tenant_id, created_at, id);
CREATE INDEX tickets_owner ON tickets (tenant_id, owner_id, status);
CREATE INDEX tickets_team ON tickets (tenant_id, team_id, status);
CREATE INDEX tickets_account ON tickets (tenant_id, account_id, status);
CREATE INDEX tickets_contact ON tickets (tenant_id, contact_id);
CREATE INDEX tickets_due ON tickets (tenant_id, sla_due_key, id);
CREATE INDEX tickets_parent ON tickets (tenant_id, parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tickets_name_key ON tickets (tenant_id, name_key, id);

CREATE VIRTUAL TABLE tickets_fts USING fts5(grams, content='tickets', content_rowid='rowid');
CREATE TRIGGER tickets_fts_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO tickets_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;
CREATE TRIGGER tickets_fts_delete AFTER DELETE ON tickets BEGIN
    INSERT INTO tickets_fts (tickets_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
END;
CREATE TRIGGER tickets_fts_update AFTER UPDATE OF grams ON tickets BEGIN
    INSERT INTO tickets_fts (tickets_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
    INSERT INTO tickets_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;

-- What was said on a ticket: an agent's public reply, an internal note, the customer's words.
CREATE TABLE ticket_messages (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    ticket_id   BLOB NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('reply', 'note', 'customer')),
    body        TEXT NOT NULL,
    user_id     BLOB,
    contact_id  BLOB,
    channel     TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (kind = 'customer' OR user_id IS NOT NULL),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX ticket_messages_of ON ticket_messages (tenant_id, ticket_id, at, id);

-- Append-only: what happened to a ticket (created, status and priority changes, replies,
-- assignment, merges, SLA outcomes). The SLA clocks are derived from it.
CREATE TABLE ticket_events (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    ticket_id   BLOB NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('created', 'status', 'priority', 'category', 'reply', 'customer_reply', 'assigned', 'merged', 'sla')),
    from_value  TEXT,
    to_value    TEXT,
    data        TEXT,
    user_id     BLOB,
    at          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX ticket_events_of ON ticket_events (tenant_id, ticket_id, at, id);

-- Each SLA target of a ticket as last evaluated (re-evaluated whenever the ticket, its policy
-- or its calendar changes): reports read attainment here.
CREATE TABLE ticket_sla (
    tenant_id        BLOB NOT NULL REFERENCES tenants (id),
    ticket_id        BLOB NOT NULL,
    target           TEXT NOT NULL CHECK (target IN ('first_response', 'next_response', 'resolution')),
    cycle            INTEGER NOT NULL,
    policy_id        BLOB NOT NULL,
    target_minutes   INTEGER NOT NULL,
    started_at       TEXT NOT NULL,
    due_at           TEXT,
    completed_at     TEXT,
    breached_at      TEXT,
    state            TEXT NOT NULL CHECK (state IN ('running', 'paused', 'met', 'missed')),
    elapsed_seconds  INTEGER NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, target, cycle),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, policy_id) REFERENCES sla_policies (tenant_id, id)
);
CREATE INDEX ticket_sla_state ON ticket_sla (tenant_id, state, completed_at);
