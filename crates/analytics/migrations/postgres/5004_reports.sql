-- Saved reports: a report builder's spec (entity, filters, groupings, measures, chart), private
-- to its owner or shared with the owner's team or the company. Whoever opens one runs it in
-- their own record scope.
CREATE TABLE reports (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    name        TEXT NOT NULL,
    owner_id    UUID NOT NULL,
    team_id     UUID,
    sharing     TEXT NOT NULL CHECK (sharing IN ('private', 'team', 'company')),
    spec        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX reports_owner ON reports (tenant_id, owner_id);
