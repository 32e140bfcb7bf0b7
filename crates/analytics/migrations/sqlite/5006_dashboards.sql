-- Dashboards: tiles (a report defined in place, a saved report, the grade migration, the
-- forecast) and the narrowing they open with (period, team, region, own records), private to
-- the owner or shared with the owner's team or the company. The built-in dashboards are code,
-- not rows. Each viewer runs every tile in their own record scope.
CREATE TABLE dashboards (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    name        TEXT NOT NULL,
    owner_id    BLOB NOT NULL,
    team_id     BLOB,
    sharing     TEXT NOT NULL CHECK (sharing IN ('private', 'team', 'company')),
    tiles       TEXT NOT NULL,
    filters     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX dashboards_owner ON dashboards (tenant_id, owner_id);

-- The dashboard a user's home page shows (none: the built-in "My numbers").
CREATE TABLE dashboard_homes (
    tenant_id    BLOB NOT NULL,
    user_id      BLOB NOT NULL,
    dashboard_id BLOB NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
