-- Leads: people (often with their company) not yet known to be customers, from forms, imports,
-- the API, campaigns or entered by hand, worked through statuses to a conversion into an
-- account and contact. The shared record columns (owner, team, custom, tags, search, grams,
-- era, name_key, trash, version) give them the record machinery (guanxi-records).
-- A lead is held by an owner or waits in a pool (公海): one of the two, always.
CREATE TABLE leads (
    tenant_id            UUID NOT NULL REFERENCES tenants(id),
    id                   UUID NOT NULL,
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
    score                BIGINT NOT NULL DEFAULT 0,
    converted_account_id UUID,
    converted_contact_id UUID,
    converted_at         TIMESTAMPTZ,
    last_touch_at        TIMESTAMPTZ NOT NULL,
    owner_id             UUID,
    pool_id              UUID,
    team_id              UUID,
    search               TEXT NOT NULL,
    grams                TEXT,
    era                  BIGINT NOT NULL DEFAULT 0,
    custom               JSONB NOT NULL,
    tags                 JSONB NOT NULL DEFAULT '[]',
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    created_by           UUID,
    updated_by           UUID,
    version              BIGINT NOT NULL,
    deleted_at           TIMESTAMPTZ,
    name_key TEXT GENERATED ALWAYS AS (split_part(search, '|', 3) || '|' || split_part(search, '|', 2)) STORED,
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
CREATE INDEX leads_grams ON leads USING gin (string_to_array(grams, ' '));
CREATE INDEX leads_era_grams ON leads
    USING gin (string_to_array(era::text || ':' || replace(grams, ' ', ' ' || era::text || ':'), ' '));
ALTER INDEX leads_era_grams ALTER COLUMN 1 SET STATISTICS 0;

-- Search eras now serve any declared entity (the table name is checked by the code that
-- declares it, not by a list here).
ALTER TABLE search_eras DROP CONSTRAINT search_eras_tbl_check;
