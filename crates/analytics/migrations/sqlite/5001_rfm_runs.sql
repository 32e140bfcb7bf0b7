-- RFM runs: a company's snapshot of every customer's recency, frequency and monetary scores
-- and segment as of a day, kept so that a later analysis shows who moved between segments.
-- One run per party and day: storing the same day again returns the run already kept.
CREATE TABLE rfm_runs (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    party        TEXT NOT NULL CHECK (party IN ('accounts', 'contacts')),
    period_from  TEXT,
    as_of        TEXT NOT NULL,
    customers    INTEGER NOT NULL,
    segments     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   BLOB,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX rfm_runs_as_of ON rfm_runs (tenant_id, party, as_of);

CREATE TABLE rfm_scores (
    tenant_id    BLOB NOT NULL,
    run_id       BLOB NOT NULL,
    customer_id  BLOB NOT NULL,
    recency_days INTEGER NOT NULL,
    frequency    INTEGER NOT NULL,
    monetary     INTEGER NOT NULL,
    r            INTEGER NOT NULL,
    f            INTEGER NOT NULL,
    m            INTEGER NOT NULL,
    segment      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, run_id, customer_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES rfm_runs (tenant_id, id)
);
