-- The NPS survey by the scheduler: every `every_days` the customers served lately (a ticket or
-- an order within `lookback_days`) who were not asked within `quiet_days` get an emailed NPS
-- invite. One row per tenant; the next run is a scheduled job keyed by its due time.
CREATE TABLE nps_schedules (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    -- The tenant's id again (one schedule a tenant; keyed as every versioned row is).
    id            BLOB NOT NULL,
    active        INTEGER NOT NULL,
    every_days    INTEGER NOT NULL CHECK (every_days BETWEEN 7 AND 366),
    lookback_days INTEGER NOT NULL CHECK (lookback_days BETWEEN 1 AND 730),
    quiet_days    INTEGER NOT NULL CHECK (quiet_days BETWEEN 1 AND 730),
    next_at       TEXT NOT NULL,
    last_run_at   TEXT,
    last_sent     INTEGER NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    BLOB,
    version       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (id = tenant_id)
);
-- Who was asked lately (the quiet period).
CREATE INDEX survey_invites_contact ON survey_invites (tenant_id, contact_id, kind, created_at);
