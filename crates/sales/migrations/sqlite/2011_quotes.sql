-- Price books: prices for an audience — one customer (account_id), a grade, an industry, a
-- channel (audience_value), or everyone — valid between two days, with volume tiers (an entry
-- per product and smallest quantity). sales::pricing picks among them.
CREATE TABLE price_books (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    id             BLOB NOT NULL,
    name           TEXT NOT NULL,
    audience       TEXT NOT NULL CHECK (audience IN ('account', 'grade', 'industry', 'channel', 'all')),
    account_id     BLOB,
    audience_value TEXT,
    currency       TEXT NOT NULL,
    valid_from     TEXT,
    valid_to       TEXT,
    active         INTEGER NOT NULL,
    description    TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    created_by     BLOB,
    updated_by     BLOB,
    version        INTEGER NOT NULL,
    deleted_at     TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    CHECK ((audience = 'account') = (account_id IS NOT NULL)),
    CHECK ((audience IN ('grade', 'industry', 'channel')) = (audience_value IS NOT NULL)),
    CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_from <= valid_to)
);
CREATE UNIQUE INDEX price_books_name ON price_books (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE price_book_entries (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    book_id      BLOB NOT NULL,
    product_id   BLOB NOT NULL,
    min_quantity INTEGER NOT NULL CHECK (min_quantity >= 1),
    unit_price   INTEGER NOT NULL CHECK (unit_price >= 0),
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
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    id              BLOB NOT NULL,
    number          TEXT NOT NULL,
    opportunity_id  BLOB NOT NULL,
    account_id      BLOB NOT NULL,
    contact_id      BLOB,
    owner_id        BLOB NOT NULL,
    team_id         BLOB,
    status          TEXT NOT NULL CHECK (status IN ('draft', 'sent', 'accepted', 'declined')),
    sent_version    INTEGER,
    edited          INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    valid_until     TEXT,
    payment_terms   TEXT,
    delivery_terms  TEXT,
    notes           TEXT,
    discount_bp     INTEGER NOT NULL CHECK (discount_bp BETWEEN 0 AND 10000),
    book_gross      INTEGER NOT NULL,
    gross           INTEGER NOT NULL,
    discount        INTEGER NOT NULL,
    net             INTEGER NOT NULL,
    tax             INTEGER NOT NULL,
    total           INTEGER NOT NULL,
    order_id        BLOB,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    created_by      BLOB,
    updated_by      BLOB,
    version         INTEGER NOT NULL,
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
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    quote_id     BLOB NOT NULL,
    line_no      INTEGER NOT NULL,
    product_id   BLOB,
    sku          TEXT,
    name         TEXT NOT NULL,
    unit         TEXT,
    quantity     INTEGER NOT NULL,
    book_price   INTEGER NOT NULL,
    book_id      BLOB,
    book_name    TEXT,
    unit_price   INTEGER NOT NULL,
    discount_bp  INTEGER NOT NULL,
    tax_rate     INTEGER NOT NULL,
    gross        INTEGER NOT NULL,
    discount     INTEGER NOT NULL,
    net          INTEGER NOT NULL,
    tax          INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, quote_id, line_no),
    FOREIGN KEY (tenant_id, quote_id) REFERENCES quotes (tenant_id, id)
);

CREATE TABLE quote_versions (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    quote_id    BLOB NOT NULL,
    version_no  INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('live', 'superseded', 'accepted', 'declined')),
    total       INTEGER NOT NULL,
    valid_until TEXT,
    snapshot    TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    sent_by     BLOB,
    decided_at  TEXT,
    decided_by  BLOB,
    reason      TEXT,
    PRIMARY KEY (tenant_id, quote_id, version_no),
    FOREIGN KEY (tenant_id, quote_id) REFERENCES quotes (tenant_id, id)
);
CREATE UNIQUE INDEX quote_versions_live ON quote_versions (tenant_id, quote_id) WHERE status <> 'superseded';
