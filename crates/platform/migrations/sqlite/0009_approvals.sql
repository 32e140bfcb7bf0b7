-- Approvals: processes an admin configures per kind of record (entry conditions on the
-- record's facts, ordered steps with approvers and rules); a request runs one against one
-- record, on a snapshot of the process's steps taken at submission (a later edit of the
-- process never changes a running request). `approval_tasks` are who is asked in each step
-- and how they answered; `approval_log` keeps every event (submit, each decision, automatic
-- passes, added approvers, recall) with who, when and the comment.
CREATE TABLE approval_processes (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    name        TEXT NOT NULL,
    entity      TEXT NOT NULL,
    position    INTEGER NOT NULL,
    conditions  TEXT NOT NULL,
    steps       TEXT NOT NULL,
    active      INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    created_by  BLOB,
    updated_by  BLOB,
    version     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX approval_processes_name ON approval_processes (tenant_id, name);

CREATE TABLE approval_requests (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    id             BLOB NOT NULL,
    process_id     BLOB NOT NULL,
    process_name   TEXT NOT NULL,
    entity         TEXT NOT NULL,
    record_id      BLOB NOT NULL,
    record_version INTEGER NOT NULL,
    title          TEXT NOT NULL,
    link           TEXT NOT NULL,
    facts          TEXT NOT NULL,
    steps          TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'sent_back', 'recalled')),
    step           INTEGER NOT NULL,
    submitted_by   BLOB NOT NULL,
    submitted_at   TEXT NOT NULL,
    decided_at     TEXT,
    version        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, process_id) REFERENCES approval_processes (tenant_id, id)
);
CREATE UNIQUE INDEX approval_requests_pending ON approval_requests (tenant_id, entity, record_id) WHERE status = 'pending';
CREATE INDEX approval_requests_record ON approval_requests (tenant_id, entity, record_id, submitted_at);
CREATE INDEX approval_requests_submitter ON approval_requests (tenant_id, submitted_by, submitted_at);

CREATE TABLE approval_tasks (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    request_id  BLOB NOT NULL,
    step        INTEGER NOT NULL,
    approver_id BLOB NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'sent_back', 'skipped')),
    added_by    BLOB,
    created_at  TEXT NOT NULL,
    decided_at  TEXT,
    PRIMARY KEY (tenant_id, request_id, step, approver_id),
    FOREIGN KEY (tenant_id, request_id) REFERENCES approval_requests (tenant_id, id)
);
CREATE INDEX approval_tasks_inbox ON approval_tasks (tenant_id, approver_id, status);

CREATE TABLE approval_log (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    request_id BLOB NOT NULL,
    seq        INTEGER NOT NULL,
    at         TEXT NOT NULL,
    actor_id   BLOB,
    step       INTEGER,
    action     TEXT NOT NULL,
    comment    TEXT,
    PRIMARY KEY (tenant_id, request_id, seq),
    FOREIGN KEY (tenant_id, request_id) REFERENCES approval_requests (tenant_id, id)
);
