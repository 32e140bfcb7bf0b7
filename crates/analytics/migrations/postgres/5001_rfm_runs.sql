-- RFM runs: a company's snapshot of every customer's recency, frequency and monetary scores
-- and segment as of a day, kept so that a later analysis shows who moved between segments.
-- One run per party and day: storing the same day again returns the run already kept.
CREATE TABLE rfm_runs (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    party        TEXT NOT NULL CHECK (party IN ('accounts', 'contacts')),
    period_from  TEXT,
    as_of        TEXT NOT NULL,
    customers    BIGINT NOT NULL,
    segments     JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   UUID,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX rfm_runs_as_of ON rfm_runs (tenant_id, party, as_of);

CREATE TABLE rfm_scores (
    tenant_id    UUID NOT NULL,
    run_id       UUID NOT NULL,
    customer_id  UUID NOT NULL,
    recency_days BIGINT NOT NULL,
    frequency    BIGINT NOT NULL,
    monetary     BIGINT NOT NULL,
    r            BIGINT NOT NULL,
    f            BIGINT NOT NULL,
    m            BIGINT NOT NULL,
    segment      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, run_id, customer_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES rfm_runs (tenant_id, id)
);
