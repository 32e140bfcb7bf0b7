-- Approvals: processes an admin configures per kind of record (entry conditions on the
-- record's facts, ordered steps with approvers and rules); a request runs one against one
-- record, on a snapshot of the process's steps taken at submission (a later edit of the
-- process never changes a running request). `approval_tasks` are who is asked in each step
-- and how they answered; `approval_log` keeps every event (submit, each decision, automatic
-- passes, added approvers, recall) with who, when and the comment.
CREATE TABLE approval_processes (
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    id          UUID NOT NULL,
    name        TEXT NOT NULL,
    entity      TEXT NOT NULL,
    position    BIGINT NOT NULL,
    conditions  JSONB NOT NULL,
    steps       JSONB NOT NULL,
    active      BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    created_by  UUID,
    updated_by  UUID,
    version     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX approval_processes_name ON approval_processes (tenant_id, name);

CREATE TABLE approval_requests (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    id             UUID NOT NULL,
    process_id     UUID NOT NULL,
    process_name   TEXT NOT NULL,
    entity         TEXT NOT NULL,
    record_id      UUID NOT NULL,
    record_version BIGINT NOT NULL,
    title          TEXT NOT NULL,
    link           TEXT NOT NULL,
    facts          JSONB NOT NULL,
    steps          JSONB NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'sent_back', 'recalled')),
    step           BIGINT NOT NULL,
    submitted_by   UUID NOT NULL,
    submitted_at   TIMESTAMPTZ NOT NULL,
    decided_at     TIMESTAMPTZ,
    version        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, process_id) REFERENCES approval_processes (tenant_id, id)
);
CREATE UNIQUE INDEX approval_requests_pending ON approval_requests (tenant_id, entity, record_id) WHERE status = 'pending';
CREATE INDEX approval_requests_record ON approval_requests (tenant_id, entity, record_id, submitted_at);
CREATE INDEX approval_requests_submitter ON approval_requests (tenant_id, submitted_by, submitted_at);

CREATE TABLE approval_tasks (
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    request_id  UUID NOT NULL,
    step        BIGINT NOT NULL,
    approver_id UUID NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'sent_back', 'skipped')),
    added_by    UUID,
    created_at  TIMESTAMPTZ NOT NULL,
    decided_at  TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, request_id, step, approver_id),
    FOREIGN KEY (tenant_id, request_id) REFERENCES approval_requests (tenant_id, id)
);
CREATE INDEX approval_tasks_inbox ON approval_tasks (tenant_id, approver_id, status);

CREATE TABLE approval_log (
    tenant_id  UUID NOT NULL REFERENCES tenants(id),
    request_id UUID NOT NULL,
    seq        BIGINT NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    actor_id   UUID,
    step       BIGINT,
    action     TEXT NOT NULL,
    comment    TEXT,
    PRIMARY KEY (tenant_id, request_id, seq),
    FOREIGN KEY (tenant_id, request_id) REFERENCES approval_requests (tenant_id, id)
);
