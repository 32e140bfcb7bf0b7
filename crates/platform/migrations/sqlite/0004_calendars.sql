-- Business calendars: when a company (or one team) works. `week` holds the working periods per
-- weekday ({"mon": ["09:00-12:00", "13:30-18:00"], …}), `days` the dated holidays and make-up
-- working days ([{"date": "2026-10-01", "kind": "holiday", "name": "国庆节"}, …]).
CREATE TABLE calendars (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    id         BLOB NOT NULL,
    name       TEXT NOT NULL,
    time_zone  TEXT NOT NULL,
    team_id    BLOB,
    is_default INTEGER NOT NULL,
    week       TEXT NOT NULL,
    days       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by BLOB,
    updated_by BLOB,
    version    INTEGER NOT NULL,
    deleted_at TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
-- One calendar per team, one company default: a race to set either is a conflict, never two.
CREATE UNIQUE INDEX calendars_team ON calendars (tenant_id, team_id) WHERE team_id IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX calendars_default ON calendars (tenant_id) WHERE is_default AND deleted_at IS NULL;
CREATE UNIQUE INDEX calendars_name ON calendars (tenant_id, name) WHERE deleted_at IS NULL;
