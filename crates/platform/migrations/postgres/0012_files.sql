-- Files kept for a tenant (a ticket's attachments, a mail's): the bytes in the database, so one
-- backup holds everything and every node serves them. The type is decided by the server (the
-- name's extension from an allow-list, checked against the bytes' signature), never the client.
CREATE TABLE files (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL CHECK (size > 0),
    sha256       TEXT NOT NULL,
    data         BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   UUID,
    PRIMARY KEY (tenant_id, id)
);
