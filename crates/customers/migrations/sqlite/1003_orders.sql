-- Purchase history: products and orders with lines. Money is integer minor units (fen) with
-- an ISO 4217 currency. An order pushed by a shop or ERP carries (channel, external_id), unique
-- per tenant, so the same order sent twice is stored once.

CREATE TABLE products (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    sku          TEXT NOT NULL,
    name         TEXT NOT NULL,
    category     TEXT,
    unit         TEXT,
    list_price   INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    active       INTEGER NOT NULL,
    search       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    created_by   BLOB,
    updated_by   BLOB,
    version      INTEGER NOT NULL,
    deleted_at   TEXT,
    custom       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX products_sku ON products (tenant_id, sku) WHERE deleted_at IS NULL;
CREATE INDEX products_name ON products (tenant_id, name, id);

CREATE TABLE orders (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    number       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    external_id  TEXT,
    status       TEXT NOT NULL,
    account_id   BLOB,
    contact_id   BLOB,
    ordered_at   TEXT NOT NULL,
    currency     TEXT NOT NULL,
    total        INTEGER NOT NULL,
    notes        TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    created_by   BLOB,
    updated_by   BLOB,
    version      INTEGER NOT NULL,
    deleted_at   TEXT,
    custom       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE UNIQUE INDEX orders_external ON orders (tenant_id, channel, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX orders_number ON orders (tenant_id, number);
CREATE INDEX orders_account ON orders (tenant_id, account_id, ordered_at, id);
CREATE INDEX orders_contact ON orders (tenant_id, contact_id, ordered_at, id);
CREATE INDEX orders_ordered ON orders (tenant_id, ordered_at, id);

CREATE TABLE order_lines (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    order_id     BLOB NOT NULL,
    line_no      INTEGER NOT NULL,
    product_id   BLOB,
    sku          TEXT,
    name         TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    unit_price   INTEGER NOT NULL,
    discount     INTEGER NOT NULL,
    amount       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, order_id, line_no),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX order_lines_product ON order_lines (tenant_id, product_id);
