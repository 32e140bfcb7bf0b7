-- CSAT and NPS. An invite is a link sent to a customer (the resolution email's CSAT, an NPS
-- survey); only the SHA-256 of its token is kept. Responses are rows, never overwritten: a
-- customer who answers again adds one, and history is kept (reports read the latest).
CREATE TABLE survey_invites (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('csat', 'nps')),
    ticket_id    BLOB,
    contact_id   BLOB,
    token_hash   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE UNIQUE INDEX survey_invites_token ON survey_invites (token_hash);

CREATE TABLE survey_responses (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('csat', 'nps')),
    invite_id    BLOB,
    ticket_id    BLOB,
    contact_id   BLOB,
    account_id   BLOB,
    agent_id     BLOB,
    team_id      BLOB,
    score        INTEGER NOT NULL,
    comment      TEXT,
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'portal', 'phone', 'api')),
    recorded_by  BLOB,
    at           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((kind = 'csat' AND score BETWEEN 1 AND 5) OR (kind = 'nps' AND score BETWEEN 0 AND 10)),
    FOREIGN KEY (tenant_id, invite_id) REFERENCES survey_invites (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
CREATE INDEX survey_responses_ticket ON survey_responses (tenant_id, ticket_id, at);
CREATE INDEX survey_responses_account ON survey_responses (tenant_id, account_id, at);
CREATE INDEX survey_responses_contact ON survey_responses (tenant_id, contact_id, at);
CREATE INDEX survey_responses_kind ON survey_responses (tenant_id, kind, at);
