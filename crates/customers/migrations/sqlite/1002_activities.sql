-- Timeline: calls, emails, meetings, visits, notes and tasks logged against an account and/or
-- a contact. A contact's activity also carries the contact's account, so the account's timeline
-- shows everything said to anyone there.

CREATE TABLE activities (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    id              BLOB NOT NULL,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT,
    account_id      BLOB,
    contact_id      BLOB,
    occurred_at     TEXT NOT NULL,
    due_at          TEXT,
    remind_at       TEXT,
    done_at         TEXT,
    assignee_id     BLOB,
    reminder_job_id BLOB,
    owner_id        BLOB NOT NULL,
    team_id         BLOB,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    created_by      BLOB,
    updated_by      BLOB,
    version         INTEGER NOT NULL,
    deleted_at      TEXT,
    custom          TEXT NOT NULL,
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
