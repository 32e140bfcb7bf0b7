-- Price books: prices for an audience — one customer (account_id), a grade, an industry, a
-- channel (audience_value), or everyone — valid between two days, with volume tiers (an entry
-- per product and smallest quantity). sales::pricing picks among them.
CREATE TABLE price_books (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    id             UUID NOT NULL,
    name           TEXT NOT NULL,
    audience       TEXT NOT NULL CHECK (audience IN ('account', 'grade', 'industry', 'channel', 'all')),
    account_id     UUID,
    audience_value TEXT,
    currency       TEXT NOT NULL,
    valid_from     TEXT,
    valid_to       TEXT,
    active         BOOLEAN NOT NULL,
    description    TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    created_by     UUID,
    updated_by     UUID,
    version        BIGINT NOT NULL,
    deleted_at     TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    CHECK ((audience = 'account') = (account_id IS NOT NULL)),
    CHECK ((audience IN ('grade', 'industry', 'channel')) = (audience_value IS NOT NULL)),
    CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_from <= valid_to)
);
CREATE UNIQUE INDEX price_books_name ON price_books (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE price_book_entries (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    book_id      UUID NOT NULL,
    product_id   UUID NOT NULL,
    min_quantity BIGINT NOT NULL CHECK (min_quantity >= 1),
    unit_price   BIGINT NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (tenant_id, book_id, product_id, min_quantity),
    FOREIGN KEY (tenant_id, book_id) REFERENCES price_books (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id)
);
CREATE INDEX price_book_entries_product ON price_book_entries (tenant_id, product_id);

-- Quotes: one per deal (so a customer never holds two live prices for it). The quote's own
-- columns and lines are the working copy a rep edits; sending freezes the working copy into the
-- next version (quote_versions.snapshot: lines, totals, terms and the customer as sent), which
-- supersedes the one before. Amounts are minor units; rates and discounts basis points.
CREATE TABLE quotes (
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    id              UUID NOT NULL,
    number          TEXT NOT NULL,
    opportunity_id  UUID NOT NULL,
    account_id      UUID NOT NULL,
    contact_id      UUID,
    owner_id        UUID NOT NULL,
    team_id         UUID,
    status          TEXT NOT NULL CHECK (status IN ('draft', 'sent', 'accepted', 'declined')),
    sent_version    BIGINT,
    edited          BOOLEAN NOT NULL,
    currency        TEXT NOT NULL,
    valid_until     TEXT,
    payment_terms   TEXT,
    delivery_terms  TEXT,
    notes           TEXT,
    discount_bp     BIGINT NOT NULL CHECK (discount_bp BETWEEN 0 AND 10000),
    book_gross      BIGINT NOT NULL,
    gross           BIGINT NOT NULL,
    discount        BIGINT NOT NULL,
    net             BIGINT NOT NULL,
    tax             BIGINT NOT NULL,
    total           BIGINT NOT NULL,
    order_id        UUID,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    created_by      UUID,
    updated_by      UUID,
    version         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, opportunity_id) REFERENCES opportunities (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id),
    CHECK ((status = 'draft') = (sent_version IS NULL)),
    CHECK ((status = 'accepted') = (order_id IS NOT NULL))
);
CREATE UNIQUE INDEX quotes_number ON quotes (tenant_id, number);
CREATE UNIQUE INDEX quotes_opportunity ON quotes (tenant_id, opportunity_id);
CREATE INDEX quotes_updated ON quotes (tenant_id, updated_at, id);
CREATE INDEX quotes_account ON quotes (tenant_id, account_id);

CREATE TABLE quote_lines (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    quote_id     UUID NOT NULL,
    line_no      BIGINT NOT NULL,
    product_id   UUID,
    sku          TEXT,
    name         TEXT NOT NULL,
    unit         TEXT,
    quantity     BIGINT NOT NULL,
    book_price   BIGINT NOT NULL,
    book_id      UUID,
    book_name    TEXT,
    unit_price   BIGINT NOT NULL,
    discount_bp  BIGINT NOT NULL,
    tax_rate     BIGINT NOT NULL,
    gross        BIGINT NOT NULL,
    discount     BIGINT NOT NULL,
    net          BIGINT NOT NULL,
    tax          BIGINT NOT NULL,
    total        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, quote_id, line_no),
    FOREIGN KEY (tenant_id, quote_id) REFERENCES quotes (tenant_id, id)
);

CREATE TABLE quote_versions (
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    quote_id    UUID NOT NULL,
    version_no  BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('live', 'superseded', 'accepted', 'declined')),
    total       BIGINT NOT NULL,
    valid_until TEXT,
    snapshot    JSONB NOT NULL,
    sent_at     TIMESTAMPTZ NOT NULL,
    sent_by     UUID,
    decided_at  TIMESTAMPTZ,
    decided_by  UUID,
    reason      TEXT,
    PRIMARY KEY (tenant_id, quote_id, version_no),
    FOREIGN KEY (tenant_id, quote_id) REFERENCES quotes (tenant_id, id)
);
CREATE UNIQUE INDEX quote_versions_live ON quote_versions (tenant_id, quote_id) WHERE status <> 'superseded';
