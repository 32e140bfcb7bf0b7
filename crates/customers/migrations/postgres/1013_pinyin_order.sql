-- Lists sorted by name sort Chinese names by their pinyin (张 among the z's, not by code
-- point): a key of the name's pinyin and the name, both read from the search text
-- (|name|pinyin|initials|…, written by every path that writes a record), indexed for keyset
-- pages.
ALTER TABLE contacts ADD COLUMN name_key TEXT GENERATED ALWAYS AS (split_part(search, '|', 3) || '|' || split_part(search, '|', 2)) STORED;
CREATE INDEX contacts_name_key ON contacts (tenant_id, name_key, id);
ALTER TABLE accounts ADD COLUMN name_key TEXT GENERATED ALWAYS AS (split_part(search, '|', 3) || '|' || split_part(search, '|', 2)) STORED;
CREATE INDEX accounts_name_key ON accounts (tenant_id, name_key, id);
