-- Merging duplicates: a merged record goes to the trash pointing at the record it was merged
-- into, so the merge can be undone and old links can be followed.
ALTER TABLE contacts ADD COLUMN merged_into BLOB;
ALTER TABLE accounts ADD COLUMN merged_into BLOB;
