-- Service desk: tickets with the record machinery's shared columns, their messages (public
-- replies, internal notes, the customer's words), their append-only event log (from which the
-- SLA clocks are derived), SLA policies, and each target's evaluation (kept for reports).

-- SLA policies: the first active one (by position) whose conditions match a ticket applies.
-- An empty condition list matches anything. Targets in business minutes on a calendar (the
-- named one, else the ticket's team's, else the company's).
CREATE TABLE sla_policies (
    tenant_id              UUID NOT NULL REFERENCES tenants(id),
    id                     UUID NOT NULL,
    name                   TEXT NOT NULL,
    position               BIGINT NOT NULL,
    active                 BOOLEAN NOT NULL,
    priorities             JSONB NOT NULL DEFAULT '[]',
    grades                 JSONB NOT NULL DEFAULT '[]',
    categories             JSONB NOT NULL DEFAULT '[]',
    first_response_minutes BIGINT CHECK (first_response_minutes > 0),
    next_response_minutes  BIGINT CHECK (next_response_minutes > 0),
    resolution_minutes     BIGINT CHECK (resolution_minutes > 0),
    warn_minutes           BIGINT NOT NULL CHECK (warn_minutes >= 0),
    raise_priority         BOOLEAN NOT NULL,
    calendar_id            UUID,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    version                BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, calendar_id) REFERENCES calendars (tenant_id, id)
);
CREATE UNIQUE INDEX sla_policies_name ON sla_policies (tenant_id, name);

CREATE TABLE tickets (
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    id               UUID NOT NULL,
    number           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    description      TEXT,
    account_id       UUID,
    contact_id       UUID,
    asset_id         UUID,
    category         TEXT,
    priority         TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'portal', 'form', 'phone', 'api', 'manual')),
    status           TEXT NOT NULL CHECK (status IN ('new', 'open', 'waiting_customer', 'waiting_third_party', 'resolved', 'closed')),
    parent_id        UUID,
    merged_into_id   UUID,
    first_replied_at TIMESTAMPTZ,
    resolved_at      TIMESTAMPTZ,
    closed_at        TIMESTAMPTZ,
    reopened         BIGINT NOT NULL DEFAULT 0,
    sla_policy_id    UUID,
    sla_due_at       TIMESTAMPTZ,
    sla_breached     BOOLEAN NOT NULL DEFAULT FALSE,
    -- The next due time in seconds since 1970 (no clock running: far in the future), the
    -- queue's order.
    sla_due_key      BIGINT NOT NULL DEFAULT 99999999999,
    owner_id         UUID,
    team_id          UUID,
    search           TEXT NOT NULL,
    grams            TEXT,
    era              BIGINT NOT NULL DEFAULT 0,
    custom           JSONB NOT NULL,
    tags             JSONB NOT NULL DEFAULT '[]',
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    created_by       UUID,
    updated_by       UUID,
    version          BIGINT NOT NULL,
    deleted_at       TIMESTAMPTZ,
    name_key TEXT GENERATED ALWAYS AS (split_part(search, '|', 3) || '|' || split_part(search, '|', 2)) STORED,
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
CREATE INDEX tickets_grams ON tickets USING gin (string_to_array(grams, ' '));
CREATE INDEX tickets_era_grams ON tickets
    USING gin (string_to_array(era::text || ':' || replace(grams, ' ', ' ' || era::text || ':'), ' '));
ALTER INDEX tickets_era_grams ALTER COLUMN 1 SET STATISTICS 0;

-- What was said on a ticket: an agent's public reply, an internal note, the customer's words.
CREATE TABLE ticket_messages (
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    id          UUID NOT NULL,
    ticket_id   UUID NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('reply', 'note', 'customer')),
    body        TEXT NOT NULL,
    user_id     UUID,
    contact_id  UUID,
    channel     TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
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
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    id          UUID NOT NULL,
    ticket_id   UUID NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('created', 'status', 'priority', 'category', 'reply', 'customer_reply', 'assigned', 'merged', 'sla')),
    from_value  TEXT,
    to_value    TEXT,
    data        JSONB,
    user_id     UUID,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX ticket_events_of ON ticket_events (tenant_id, ticket_id, at, id);

-- Each SLA target of a ticket as last evaluated (re-evaluated whenever the ticket, its policy
-- or its calendar changes): reports read attainment here.
CREATE TABLE ticket_sla (
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    ticket_id        UUID NOT NULL,
    target           TEXT NOT NULL CHECK (target IN ('first_response', 'next_response', 'resolution')),
    cycle            BIGINT NOT NULL,
    policy_id        UUID NOT NULL,
    target_minutes   BIGINT NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    due_at           TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    breached_at      TIMESTAMPTZ,
    state            TEXT NOT NULL CHECK (state IN ('running', 'paused', 'met', 'missed')),
    elapsed_seconds  BIGINT NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, target, cycle),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, policy_id) REFERENCES sla_policies (tenant_id, id)
);
CREATE INDEX ticket_sla_state ON ticket_sla (tenant_id, state, completed_at);
