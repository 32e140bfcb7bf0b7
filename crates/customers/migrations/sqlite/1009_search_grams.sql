-- The search index: `grams` holds the index tokens of the `search` text (see
-- customers::normalize::grams); an external-content FTS5 table over it, kept in step by
-- triggers, finds the rows having all of a query's tokens; LIKE on `search` then confirms.
ALTER TABLE accounts ADD COLUMN grams TEXT;
ALTER TABLE contacts ADD COLUMN grams TEXT;

CREATE VIRTUAL TABLE accounts_fts USING fts5(grams, content='accounts', content_rowid='rowid');
CREATE TRIGGER accounts_fts_insert AFTER INSERT ON accounts BEGIN
    INSERT INTO accounts_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;
CREATE TRIGGER accounts_fts_delete AFTER DELETE ON accounts BEGIN
    INSERT INTO accounts_fts (accounts_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
END;
CREATE TRIGGER accounts_fts_update AFTER UPDATE OF grams ON accounts BEGIN
    INSERT INTO accounts_fts (accounts_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
    INSERT INTO accounts_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;

CREATE VIRTUAL TABLE contacts_fts USING fts5(grams, content='contacts', content_rowid='rowid');
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF grams ON contacts BEGIN
    INSERT INTO contacts_fts (contacts_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
    INSERT INTO contacts_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;
