-- Purchase history: products and orders with lines. Money is integer minor units (fen) with
-- an ISO 4217 currency. An order pushed by a shop or ERP carries (channel, external_id), unique
-- per tenant, so the same order sent twice is stored once.

CREATE TABLE products (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    sku          TEXT NOT NULL,
    name         TEXT NOT NULL,
    category     TEXT,
    unit         TEXT,
    list_price   BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    active       BOOLEAN NOT NULL,
    search       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    created_by   UUID,
    updated_by   UUID,
    version      BIGINT NOT NULL,
    deleted_at   TIMESTAMPTZ,
    custom       JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX products_sku ON products (tenant_id, sku) WHERE deleted_at IS NULL;
CREATE INDEX products_name ON products (tenant_id, name, id);

CREATE TABLE orders (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    number       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    external_id  TEXT,
    status       TEXT NOT NULL,
    account_id   UUID,
    contact_id   UUID,
    ordered_at   TIMESTAMPTZ NOT NULL,
    currency     TEXT NOT NULL,
    total        BIGINT NOT NULL,
    notes        TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    created_by   UUID,
    updated_by   UUID,
    version      BIGINT NOT NULL,
    deleted_at   TIMESTAMPTZ,
    custom       JSONB NOT NULL,
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
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    order_id     UUID NOT NULL,
    line_no      BIGINT NOT NULL,
    product_id   UUID,
    sku          TEXT,
    name         TEXT NOT NULL,
    quantity     BIGINT NOT NULL,
    unit_price   BIGINT NOT NULL,
    discount     BIGINT NOT NULL,
    amount       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, order_id, line_no),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX order_lines_product ON order_lines (tenant_id, product_id);
