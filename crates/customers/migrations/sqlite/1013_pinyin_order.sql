-- Lists sorted by name sort Chinese names by their pinyin (张 among the z's, not by code
-- point): a key of the name's pinyin and the name, both read from the search text
-- (|name|pinyin|initials|…, written by every path that writes a record), indexed for keyset
-- pages. Virtual on SQLite (computed on read, stored in the index).
ALTER TABLE contacts ADD COLUMN name_key TEXT GENERATED ALWAYS AS (substr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), 1, instr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), '|') - 1) || '|' || substr(substr(search, 2), 1, instr(substr(search, 2), '|') - 1)) VIRTUAL;
CREATE INDEX contacts_name_key ON contacts (tenant_id, name_key, id);
ALTER TABLE accounts ADD COLUMN name_key TEXT GENERATED ALWAYS AS (substr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), 1, instr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), '|') - 1) || '|' || substr(substr(search, 2), 1, instr(substr(search, 2), '|') - 1)) VIRTUAL;
CREATE INDEX accounts_name_key ON accounts (tenant_id, name_key, id);
