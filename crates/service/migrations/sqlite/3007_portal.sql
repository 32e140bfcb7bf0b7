-- The customer portal: a contact's sign-in (its own identity space, apart from staff users),
-- its sessions and one-time sign-in links (only SHA-256 digests kept), and what customers
-- asked before opening a ticket (suggested articles; solved by one, or submitted anyway).
CREATE TABLE portal_users (
    tenant_id       BLOB NOT NULL REFERENCES tenants (id),
    id              BLOB NOT NULL,
    contact_id      BLOB NOT NULL,
    email           TEXT NOT NULL,
    password_hash   TEXT,
    company_access  INTEGER NOT NULL,
    active          INTEGER NOT NULL,
    last_sign_in_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    version         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE UNIQUE INDEX portal_users_email ON portal_users (tenant_id, email);
CREATE UNIQUE INDEX portal_users_contact ON portal_users (tenant_id, contact_id);

CREATE TABLE portal_sessions (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    token_hash     TEXT NOT NULL,
    portal_user_id BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, portal_user_id) REFERENCES portal_users (tenant_id, id)
);
CREATE INDEX portal_sessions_user ON portal_sessions (tenant_id, portal_user_id);

CREATE TABLE portal_links (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    token_hash     TEXT NOT NULL,
    portal_user_id BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, portal_user_id) REFERENCES portal_users (tenant_id, id)
);

CREATE TABLE help_deflections (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    id             BLOB NOT NULL,
    portal_user_id BLOB NOT NULL,
    question       TEXT NOT NULL,
    suggested      TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('open', 'solved', 'submitted')),
    article_id     BLOB,
    ticket_id      BLOB,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((outcome = 'solved') = (article_id IS NOT NULL)),
    CHECK ((outcome = 'submitted') = (ticket_id IS NOT NULL)),
    FOREIGN KEY (tenant_id, portal_user_id) REFERENCES portal_users (tenant_id, id),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX help_deflections_created ON help_deflections (tenant_id, created_at);
