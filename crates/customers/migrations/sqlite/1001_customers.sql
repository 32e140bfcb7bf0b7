-- Customer 360: accounts (companies, in hierarchies) and contacts (people).
-- `search` holds the lower-cased name, its pinyin and initials, phone digits, email, WeChat
-- (see customers::normalize::search_text).

CREATE TABLE accounts (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    name        TEXT NOT NULL,
    parent_id   BLOB,
    credit_code TEXT,
    industry    TEXT,
    website     TEXT,
    email       TEXT,
    phone       TEXT,
    phone_e164  TEXT,
    wechat      TEXT,
    country     TEXT NOT NULL,
    province    TEXT,
    city        TEXT,
    district    TEXT,
    address     TEXT,
    postal_code TEXT,
    source      TEXT,
    description TEXT,
    owner_id    BLOB NOT NULL,
    team_id     BLOB,
    search      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    created_by  BLOB,
    updated_by  BLOB,
    version     INTEGER NOT NULL,
    deleted_at  TEXT,
    custom      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX accounts_credit_code ON accounts (tenant_id, credit_code)
    WHERE credit_code IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX accounts_name ON accounts (tenant_id, name, id);
CREATE INDEX accounts_updated ON accounts (tenant_id, updated_at, id);
CREATE INDEX accounts_owner ON accounts (tenant_id, owner_id);
CREATE INDEX accounts_parent ON accounts (tenant_id, parent_id);
CREATE INDEX accounts_phone ON accounts (tenant_id, phone_e164);

CREATE TABLE contacts (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    name        TEXT NOT NULL,
    family_name TEXT,
    given_name  TEXT,
    account_id  BLOB,
    title       TEXT,
    department  TEXT,
    phone       TEXT,
    phone_e164  TEXT,
    email       TEXT,
    wechat      TEXT,
    gender      TEXT,
    birthday    TEXT,
    country     TEXT NOT NULL,
    province    TEXT,
    city        TEXT,
    district    TEXT,
    address     TEXT,
    notes       TEXT,
    owner_id    BLOB NOT NULL,
    team_id     BLOB,
    search      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    created_by  BLOB,
    updated_by  BLOB,
    version     INTEGER NOT NULL,
    deleted_at  TEXT,
    custom      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE INDEX contacts_name ON contacts (tenant_id, name, id);
CREATE INDEX contacts_updated ON contacts (tenant_id, updated_at, id);
CREATE INDEX contacts_account ON contacts (tenant_id, account_id);
CREATE INDEX contacts_owner ON contacts (tenant_id, owner_id);
CREATE INDEX contacts_phone ON contacts (tenant_id, phone_e164);
CREATE INDEX contacts_email ON contacts (tenant_id, email);
