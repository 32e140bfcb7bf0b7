-- First-response SLA: per lead source (or `*` for any), so many business minutes to answer a
-- new lead (counted on the team's business calendar), a warning so many minutes before, and
-- what a breach does: tell the managers only, also give the lead to someone else by the
-- assignment rules, or return it to the pool. A lead keeps its deadline, when it was answered
-- (its status first left `new`) and when it was breached.
CREATE TABLE lead_response_sla (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    source       TEXT NOT NULL CHECK (source IN ('*', 'form', 'import', 'api', 'manual', 'campaign')),
    minutes      BIGINT NOT NULL CHECK (minutes > 0),
    warn_minutes BIGINT NOT NULL CHECK (warn_minutes >= 0),
    on_breach    TEXT NOT NULL CHECK (on_breach IN ('notify', 'reassign', 'pool')),
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, source)
);
ALTER TABLE leads ADD COLUMN response_due_at TIMESTAMPTZ;
ALTER TABLE leads ADD COLUMN responded_at TIMESTAMPTZ;
ALTER TABLE leads ADD COLUMN sla_breached_at TIMESTAMPTZ;
CREATE INDEX leads_breached ON leads (tenant_id, sla_breached_at, id) WHERE sla_breached_at IS NOT NULL AND responded_at IS NULL;
