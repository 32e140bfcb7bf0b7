-- Timeline: calls, emails, meetings, visits, notes and tasks logged against an account and/or
-- a contact. A contact's activity also carries the contact's account, so the account's timeline
-- shows everything said to anyone there.

CREATE TABLE activities (
    tenant_id       UUID NOT NULL REFERENCES tenants (id),
    id              UUID NOT NULL,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT,
    account_id      UUID,
    contact_id      UUID,
    occurred_at     TIMESTAMPTZ NOT NULL,
    due_at          TIMESTAMPTZ,
    remind_at       TIMESTAMPTZ,
    done_at         TIMESTAMPTZ,
    assignee_id     UUID,
    reminder_job_id UUID,
    owner_id        UUID NOT NULL,
    team_id         UUID,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    created_by      UUID,
    updated_by      UUID,
    version         BIGINT NOT NULL,
    deleted_at      TIMESTAMPTZ,
    custom          JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE INDEX activities_account ON activities (tenant_id, account_id, occurred_at, id);
CREATE INDEX activities_contact ON activities (tenant_id, contact_id, occurred_at, id);
CREATE INDEX activities_tasks ON activities (tenant_id, assignee_id, done_at, due_at);
