-- Document numbers (quotes first; invoices, contracts and tickets later): a tenant's pattern
-- per kind of document, and a counter per kind and period (the date part of the pattern, so a
-- `{YYYY}` pattern restarts each year). The counter is advanced inside the transaction that
-- stores the document: a rolled-back document gives its number back, so numbers have no gaps.
CREATE TABLE numberings (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by BLOB,
    PRIMARY KEY (tenant_id, name)
);
CREATE TABLE numbering_counters (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    period     TEXT NOT NULL,
    last_value INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name, period)
);
