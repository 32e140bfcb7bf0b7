-- Saved list views: a named query string (filters, sort, columns) of one list, kept by a user
-- for themselves or shared with the whole company.
CREATE TABLE saved_views (
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    id         UUID NOT NULL,
    owner_id   UUID NOT NULL,
    entity     TEXT NOT NULL,
    name       TEXT NOT NULL,
    query      TEXT NOT NULL,
    shared     BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX saved_views_list ON saved_views (tenant_id, entity, owner_id);
