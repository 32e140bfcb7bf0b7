-- Saved list views: a named query string (filters, sort, columns) of one list, kept by a user
-- for themselves or shared with the whole company.
CREATE TABLE saved_views (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    id         BLOB NOT NULL,
    owner_id   BLOB NOT NULL,
    entity     TEXT NOT NULL,
    name       TEXT NOT NULL,
    query      TEXT NOT NULL,
    shared     INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX saved_views_list ON saved_views (tenant_id, entity, owner_id);
