-- Follow-up visits (回访) also at the end of an asset's warranty: a daily sweep books one for
-- each active asset whose warranty ends within the tenant's `days_before`, once per asset and
-- warranty end (an extended warranty is visited again). SQLite cannot change a CHECK in place:
-- the visits are rebuilt with the wider reason and the asset they are for.
CREATE TABLE service_visits_new (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('onsite', 'follow_up')),
    reason      TEXT NOT NULL CHECK (reason IN ('manual', 'resolved', 'warranty')),
    ticket_id   BLOB,
    account_id  BLOB,
    contact_id  BLOB,
    engineer_id BLOB,
    team_id     BLOB,
    skill       TEXT,
    starts_at   TEXT NOT NULL,
    minutes     INTEGER NOT NULL CHECK (minutes > 0 AND minutes <= 1440),
    address     TEXT,
    status      TEXT NOT NULL CHECK (status IN ('scheduled', 'done', 'cancelled')),
    report      TEXT,
    outcome     TEXT CHECK (outcome IN ('solved', 'unsolved', 'satisfied', 'unsatisfied', 'unreachable')),
    activity_id BLOB,
    created_at  TEXT NOT NULL,
    created_by  BLOB,
    updated_at  TEXT NOT NULL,
    done_at     TEXT,
    version     BIGINT NOT NULL,
    asset_id       BLOB,
    warranty_until TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, engineer_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id),
    CHECK (reason <> 'warranty' OR (asset_id IS NOT NULL AND warranty_until IS NOT NULL))
);
INSERT INTO service_visits_new (tenant_id, id, kind, reason, ticket_id, account_id, contact_id,
    engineer_id, team_id, skill, starts_at, minutes, address, status, report, outcome,
    activity_id, created_at, created_by, updated_at, done_at, version)
    SELECT tenant_id, id, kind, reason, ticket_id, account_id, contact_id, engineer_id, team_id,
        skill, starts_at, minutes, address, status, report, outcome, activity_id, created_at,
        created_by, updated_at, done_at, version FROM service_visits;
DROP TABLE service_visits;
ALTER TABLE service_visits_new RENAME TO service_visits;
CREATE INDEX service_visits_engineer ON service_visits (tenant_id, engineer_id, starts_at);
CREATE INDEX service_visits_ticket ON service_visits (tenant_id, ticket_id);
CREATE INDEX service_visits_starts ON service_visits (tenant_id, starts_at, id);
CREATE UNIQUE INDEX service_visits_follow_up ON service_visits (tenant_id, ticket_id) WHERE reason = 'resolved';
CREATE UNIQUE INDEX service_visits_warranty ON service_visits (tenant_id, asset_id, warranty_until) WHERE reason = 'warranty';

-- The tenant's sweep: on or off, how many days before a warranty ends the visit is due, the
-- skill its engineer needs (none: booked unassigned), and the next daily run (a scheduled job
-- keyed by its due time, as the NPS survey's).
CREATE TABLE warranty_sweeps (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    active      INTEGER NOT NULL,
    days_before INTEGER NOT NULL CHECK (days_before BETWEEN 0 AND 365),
    skill       TEXT,
    next_at     TEXT NOT NULL,
    last_run_at TEXT,
    last_booked INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  BLOB,
    version     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (id = tenant_id)
);
CREATE INDEX assets_warranty ON assets (tenant_id, warranty_until) WHERE deleted_at IS NULL;
