-- Dashboards: tiles (a report defined in place, a saved report, the grade migration, the
-- forecast) and the narrowing they open with (period, team, region, own records), private to
-- the owner or shared with the owner's team or the company. The built-in dashboards are code,
-- not rows. Each viewer runs every tile in their own record scope.
CREATE TABLE dashboards (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    name        TEXT NOT NULL,
    owner_id    UUID NOT NULL,
    team_id     UUID,
    sharing     TEXT NOT NULL CHECK (sharing IN ('private', 'team', 'company')),
    tiles       JSONB NOT NULL,
    filters     JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX dashboards_owner ON dashboards (tenant_id, owner_id);

-- The dashboard a user's home page shows (none: the built-in "My numbers").
CREATE TABLE dashboard_homes (
    tenant_id    UUID NOT NULL,
    user_id      UUID NOT NULL,
    dashboard_id UUID NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
