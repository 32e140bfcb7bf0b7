-- Search eras (customers::eras): rows are numbered, per tenant and table, in eras of about
-- 65,536 in the order they were created, and a second search index keys each token with its
-- row's era (`15:cjh`), so a search page reads the newest eras' matches one era at a time
-- instead of reading and sorting every match (1,739 rows for `cjh` in a million contacts).
-- The plain token index stays: searches in another order, and the older eras of a page, use
-- it. Existing rows get their eras here, in id (creation) order: the first 65,536 of a tenant
-- stay in era 0, so only a large table is rewritten (about 2,000 rows a second here: a
-- million contacts take some eight minutes, once).
CREATE TABLE search_eras (
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    tbl TEXT NOT NULL CHECK (tbl IN ('accounts', 'contacts')),
    era BIGINT NOT NULL CHECK (era >= 0),
    size BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, tbl, era)
);
ALTER TABLE accounts ADD COLUMN era BIGINT NOT NULL DEFAULT 0;
ALTER TABLE contacts ADD COLUMN era BIGINT NOT NULL DEFAULT 0;
UPDATE accounts t SET era = n.era
    FROM (SELECT tenant_id, id, (row_number() OVER (PARTITION BY tenant_id ORDER BY id) - 1) / 65536 AS era
          FROM accounts) n
    WHERE t.tenant_id = n.tenant_id AND t.id = n.id AND n.era > 0;
UPDATE contacts t SET era = n.era
    FROM (SELECT tenant_id, id, (row_number() OVER (PARTITION BY tenant_id ORDER BY id) - 1) / 65536 AS era
          FROM contacts) n
    WHERE t.tenant_id = n.tenant_id AND t.id = n.id AND n.era > 0;
INSERT INTO search_eras (tenant_id, tbl, era, size)
    SELECT tenant_id, 'accounts', era, COUNT(*) FROM accounts GROUP BY tenant_id, era;
INSERT INTO search_eras (tenant_id, tbl, era, size)
    SELECT tenant_id, 'contacts', era, COUNT(*) FROM contacts GROUP BY tenant_id, era;
CREATE INDEX accounts_era_grams ON accounts
    USING gin (string_to_array(era::text || ':' || replace(grams, ' ', ' ' || era::text || ':'), ' '));
CREATE INDEX contacts_era_grams ON contacts
    USING gin (string_to_array(era::text || ':' || replace(grams, ' ', ' ' || era::text || ':'), ' '));
-- No planner statistics for the era-keyed index: its branches are always read through it
-- (ordered by era and id, which no index gives), and reading a thousand tokens' statistics
-- cost each branch about 0.4 ms of planning.
ALTER INDEX accounts_era_grams ALTER COLUMN 1 SET STATISTICS 0;
ALTER INDEX contacts_era_grams ALTER COLUMN 1 SET STATISTICS 0;
-- Back to the default statistics for the plain index (1010 kept 10,000 tokens): a page no
-- longer chooses between walking the id index and sorting by the token's frequency, and
-- reading the larger statistics cost every search plan about a millisecond per index
-- condition.
ALTER INDEX accounts_grams ALTER COLUMN 1 SET STATISTICS -1;
ALTER INDEX contacts_grams ALTER COLUMN 1 SET STATISTICS -1;
