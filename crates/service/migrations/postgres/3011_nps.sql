-- The NPS survey by the scheduler: every `every_days` the customers served lately (a ticket or
-- an order within `lookback_days`) who were not asked within `quiet_days` get an emailed NPS
-- invite. One row per tenant; the next run is a scheduled job keyed by its due time.
CREATE TABLE nps_schedules (
    tenant_id     UUID NOT NULL REFERENCES tenants (id),
    -- The tenant's id again (one schedule a tenant; keyed as every versioned row is).
    id            UUID NOT NULL,
    active        BOOLEAN NOT NULL,
    every_days    BIGINT NOT NULL CHECK (every_days BETWEEN 7 AND 366),
    lookback_days BIGINT NOT NULL CHECK (lookback_days BETWEEN 1 AND 730),
    quiet_days    BIGINT NOT NULL CHECK (quiet_days BETWEEN 1 AND 730),
    next_at       TIMESTAMPTZ NOT NULL,
    last_run_at   TIMESTAMPTZ,
    last_sent     BIGINT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    updated_by    UUID,
    version       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (id = tenant_id)
);
-- Who was asked lately (the quiet period).
CREATE INDEX survey_invites_contact ON survey_invites (tenant_id, contact_id, kind, created_at);
