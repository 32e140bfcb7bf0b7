-- A tenant's trashed contacts, found without a scan: a company-wide analysis of consumers reads
-- the orders alone and leaves out those of trashed contacts (`… NOT IN` the trash) instead of
-- joining every order to its buyer. Small: only trashed rows are in it.
CREATE INDEX contacts_trashed ON contacts (tenant_id, id) WHERE deleted_at IS NOT NULL;
