-- Reports emailed on a schedule: a saved report may be sent daily, weekly (Mondays) or monthly
-- (the 1st), at 08:00 on the tenant's calendar, to up to 20 addresses. The scheduler's job
-- records each due delivery once (unique per report and due time); the analytics worker runs
-- the report as its owner and queues the mails in the transaction that marks it sent.
ALTER TABLE reports ADD COLUMN schedule TEXT NOT NULL DEFAULT 'never';
ALTER TABLE reports ADD COLUMN recipients TEXT NOT NULL DEFAULT '[]';

CREATE TABLE report_deliveries (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    report_id   BLOB NOT NULL,
    due_at      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    error       TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX report_deliveries_due ON report_deliveries (tenant_id, report_id, due_at);
CREATE INDEX report_deliveries_pending ON report_deliveries (status, created_at) WHERE status = 'pending';
