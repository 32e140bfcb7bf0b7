-- Tags: free labels on accounts and contacts (VIP, 展会线索, …), set one by one or in bulk and
-- filtered on in every list.
ALTER TABLE accounts ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE contacts ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
