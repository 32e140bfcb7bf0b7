-- Leads: people (often with their company) not yet known to be customers, from forms, imports,
-- the API, campaigns or entered by hand, worked through statuses to a conversion into an
-- account and contact. The shared record columns (owner, team, custom, tags, search, grams,
-- era, name_key, trash, version) give them the record machinery (guanxi-records).
-- A lead is held by an owner or waits in a pool (公海): one of the two, always.
CREATE TABLE leads (
    tenant_id            BLOB NOT NULL REFERENCES tenants (id),
    id                   BLOB NOT NULL,
    name                 TEXT NOT NULL,
    company              TEXT,
    title                TEXT,
    phone                TEXT,
    phone_e164           TEXT,
    email                TEXT,
    wechat               TEXT,
    country              TEXT NOT NULL,
    province             TEXT,
    city                 TEXT,
    industry             TEXT,
    product_interest     TEXT,
    notes                TEXT,
    source               TEXT NOT NULL CHECK (source IN ('form', 'import', 'api', 'manual', 'campaign')),
    source_detail        TEXT,
    status               TEXT NOT NULL CHECK (status IN ('new', 'working', 'nurturing', 'qualified', 'disqualified', 'converted')),
    disqualify_reason    TEXT,
    score                INTEGER NOT NULL DEFAULT 0,
    converted_account_id BLOB,
    converted_contact_id BLOB,
    converted_at         TEXT,
    last_touch_at        TEXT NOT NULL,
    owner_id             BLOB,
    pool_id              BLOB,
    team_id              BLOB,
    search               TEXT NOT NULL,
    grams                TEXT,
    era                  INTEGER NOT NULL DEFAULT 0,
    custom               TEXT NOT NULL,
    tags                 TEXT NOT NULL DEFAULT '[]',
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    created_by           BLOB,
    updated_by           BLOB,
    version              INTEGER NOT NULL,
    deleted_at           TEXT,
    name_key TEXT GENERATED ALWAYS AS (substr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), 1, instr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), '|') - 1) || '|' || substr(substr(search, 2), 1, instr(substr(search, 2), '|') - 1)) VIRTUAL,
    PRIMARY KEY (tenant_id, id),
    CHECK (owner_id IS NOT NULL OR pool_id IS NOT NULL),
    CHECK (status <> 'disqualified' OR disqualify_reason IS NOT NULL),
    CHECK ((status = 'converted') = (converted_contact_id IS NOT NULL AND converted_at IS NOT NULL)),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    FOREIGN KEY (tenant_id, converted_account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, converted_contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX leads_updated ON leads (tenant_id, updated_at, id);
CREATE INDEX leads_created ON leads (tenant_id, created_at, id);
CREATE INDEX leads_owner ON leads (tenant_id, owner_id);
CREATE INDEX leads_status ON leads (tenant_id, status, id);
CREATE INDEX leads_score ON leads (tenant_id, score, id);
CREATE INDEX leads_phone ON leads (tenant_id, phone_e164);
CREATE INDEX leads_email ON leads (tenant_id, email);
CREATE INDEX leads_name_key ON leads (tenant_id, name_key, id);

CREATE VIRTUAL TABLE leads_fts USING fts5(grams, content='leads', content_rowid='rowid');
CREATE TRIGGER leads_fts_insert AFTER INSERT ON leads BEGIN
    INSERT INTO leads_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;
CREATE TRIGGER leads_fts_delete AFTER DELETE ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
END;
CREATE TRIGGER leads_fts_update AFTER UPDATE OF grams ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
    INSERT INTO leads_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;

-- Search eras now serve any declared entity (the table name is checked by the code that
-- declares it, not by a list here).
CREATE TABLE search_eras_new (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    tbl TEXT NOT NULL,
    era INTEGER NOT NULL CHECK (era >= 0),
    size INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, tbl, era)
);
INSERT INTO search_eras_new SELECT tenant_id, tbl, era, size FROM search_eras;
DROP TABLE search_eras;
ALTER TABLE search_eras_new RENAME TO search_eras;
