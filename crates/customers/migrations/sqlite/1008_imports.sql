-- Imports started from the web UI: the uploaded file, what to do with it, and how far the
-- import got. The import runs in the background; its page shows a progress bar. A restart
-- marks a running import `interrupted`; running it again doubles nothing.
CREATE TABLE imports (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    id         BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    target     TEXT NOT NULL,
    file_name  TEXT NOT NULL,
    options    TEXT NOT NULL,
    data       BLOB NOT NULL,
    size       INTEGER NOT NULL,
    status     TEXT NOT NULL,
    rows_done  INTEGER NOT NULL,
    bytes_done INTEGER NOT NULL,
    report     TEXT,
    error      TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX imports_status ON imports (status);
