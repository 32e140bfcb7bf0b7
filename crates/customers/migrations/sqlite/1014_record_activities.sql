-- Activities about any declared record besides accounts and contacts (a lead now; an
-- opportunity or a ticket later): the record's entity (its table) and id. Who may see such an
-- activity is whoever may read that record. When a lead is converted its activities also get
-- the new contact and account, so they show on the customer's timeline as well.
ALTER TABLE activities ADD COLUMN record_type TEXT;
ALTER TABLE activities ADD COLUMN record_id BLOB;
CREATE INDEX activities_record ON activities (tenant_id, record_type, record_id, occurred_at, id)
    WHERE record_id IS NOT NULL;
