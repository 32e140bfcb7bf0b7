-- Follow-up visits (回访) also at the end of an asset's warranty: a daily sweep books one for
-- each active asset whose warranty ends within the tenant's `days_before`, once per asset and
-- warranty end (an extended warranty is visited again).
ALTER TABLE service_visits DROP CONSTRAINT service_visits_reason_check;
ALTER TABLE service_visits ADD CONSTRAINT service_visits_reason_check
    CHECK (reason IN ('manual', 'resolved', 'warranty'));
ALTER TABLE service_visits ADD COLUMN asset_id UUID;
ALTER TABLE service_visits ADD COLUMN warranty_until TEXT;
ALTER TABLE service_visits ADD CONSTRAINT service_visits_asset
    FOREIGN KEY (tenant_id, asset_id) REFERENCES assets (tenant_id, id);
ALTER TABLE service_visits ADD CONSTRAINT service_visits_warranty_asset
    CHECK (reason <> 'warranty' OR (asset_id IS NOT NULL AND warranty_until IS NOT NULL));
CREATE UNIQUE INDEX service_visits_warranty ON service_visits (tenant_id, asset_id, warranty_until) WHERE reason = 'warranty';

-- The tenant's sweep: on or off, how many days before a warranty ends the visit is due, the
-- skill its engineer needs (none: booked unassigned), and the next daily run (a scheduled job
-- keyed by its due time, as the NPS survey's).
CREATE TABLE warranty_sweeps (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    active      BOOLEAN NOT NULL,
    days_before BIGINT NOT NULL CHECK (days_before BETWEEN 0 AND 365),
    skill       TEXT,
    next_at     TIMESTAMPTZ NOT NULL,
    last_run_at TIMESTAMPTZ,
    last_booked BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    updated_by  UUID,
    version     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (id = tenant_id)
);
CREATE INDEX assets_warranty ON assets (tenant_id, warranty_until) WHERE deleted_at IS NULL;
