-- Imports started from the web UI: the uploaded file, what to do with it, and how far the
-- import got. The import runs in the background; its page shows a progress bar. A restart
-- marks a running import `interrupted`; running it again doubles nothing.
CREATE TABLE imports (
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    id         UUID NOT NULL,
    user_id    UUID NOT NULL,
    target     TEXT NOT NULL,
    file_name  TEXT NOT NULL,
    options    JSONB NOT NULL,
    data       BYTEA NOT NULL,
    size       BIGINT NOT NULL,
    status     TEXT NOT NULL,
    rows_done  BIGINT NOT NULL,
    bytes_done BIGINT NOT NULL,
    report     JSONB,
    error      TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX imports_status ON imports (status);
