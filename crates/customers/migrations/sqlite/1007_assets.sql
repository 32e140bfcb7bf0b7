-- Assets: the products and services a customer owns or subscribes to (a machine with its
-- serial, a line with its number, a licence), with start, end and warranty. With account
-- hierarchies they express the telecom levels customer → account → user → service.
CREATE TABLE assets (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    id             BLOB NOT NULL,
    account_id     BLOB,
    contact_id     BLOB,
    product_id     BLOB,
    name           TEXT NOT NULL,
    serial         TEXT,
    kind           TEXT NOT NULL,
    status         TEXT NOT NULL,
    quantity       INTEGER NOT NULL,
    started_on     TEXT,
    ends_on        TEXT,
    warranty_until TEXT,
    notes          TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    created_by     BLOB,
    updated_by     BLOB,
    version        INTEGER NOT NULL,
    deleted_at     TEXT,
    custom         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE UNIQUE INDEX assets_serial ON assets (tenant_id, serial)
    WHERE serial IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX assets_account ON assets (tenant_id, account_id, name, id);
CREATE INDEX assets_contact ON assets (tenant_id, contact_id, name, id);
