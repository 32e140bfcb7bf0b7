-- Key locks: a row per tenant and key (a person's phone, email or name at a company; a
-- submission's fingerprint), upserted inside the transaction that acts on the key, so two
-- requests about the same person are serialised on both databases, and a repeat of the same
-- submission within a window is recognised by its row's time.
CREATE TABLE key_locks (
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    key       TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
