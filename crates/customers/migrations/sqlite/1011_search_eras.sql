-- Search eras (customers::eras): rows are numbered, per tenant and table, in eras of about
-- 65,536 in the order they were created. PostgreSQL's search pages read them an era at a
-- time; SQLite's FTS index has an order of its own, so here the eras are only kept, for one
-- schema on both databases.
CREATE TABLE search_eras (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    tbl TEXT NOT NULL CHECK (tbl IN ('accounts', 'contacts')),
    era INTEGER NOT NULL CHECK (era >= 0),
    size INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, tbl, era)
);
ALTER TABLE accounts ADD COLUMN era INTEGER NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN era INTEGER NOT NULL DEFAULT 0;
