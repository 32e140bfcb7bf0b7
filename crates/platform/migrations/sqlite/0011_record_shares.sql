-- Record sharing: a record of an entity that declares sharing (deals) opened to named
-- colleagues beyond what their role's scope covers — to read it, or to read and edit it (never
-- to delete it, hand it over or share it on). Consulted wherever the machinery applies a scope.
CREATE TABLE record_shares (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    entity     TEXT NOT NULL,
    record_id  BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    access     TEXT NOT NULL CHECK (access IN ('read', 'edit')),
    granted_by BLOB,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, entity, record_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
) WITHOUT ROWID;
-- A colleague's shared records of one entity: the scope's `OR id IN (…)`.
CREATE INDEX record_shares_user ON record_shares (tenant_id, user_id, entity, record_id);
