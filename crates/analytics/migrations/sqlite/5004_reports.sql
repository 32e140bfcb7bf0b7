-- Saved reports: a report builder's spec (entity, filters, groupings, measures, chart), private
-- to its owner or shared with the owner's team or the company. Whoever opens one runs it in
-- their own record scope.
CREATE TABLE reports (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    name        TEXT NOT NULL,
    owner_id    BLOB NOT NULL,
    team_id     BLOB,
    sharing     TEXT NOT NULL CHECK (sharing IN ('private', 'team', 'company')),
    spec        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX reports_owner ON reports (tenant_id, owner_id);
