-- The customer portal: a contact's sign-in (its own identity space, apart from staff users),
-- its sessions and one-time sign-in links (only SHA-256 digests kept), and what customers
-- asked before opening a ticket (suggested articles; solved by one, or submitted anyway).
CREATE TABLE portal_users (
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    id              UUID NOT NULL,
    contact_id      UUID NOT NULL,
    email           TEXT NOT NULL,
    password_hash   TEXT,
    company_access  BOOLEAN NOT NULL,
    active          BOOLEAN NOT NULL,
    last_sign_in_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    version         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE UNIQUE INDEX portal_users_email ON portal_users (tenant_id, email);
CREATE UNIQUE INDEX portal_users_contact ON portal_users (tenant_id, contact_id);

CREATE TABLE portal_sessions (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    token_hash     TEXT NOT NULL,
    portal_user_id UUID NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, portal_user_id) REFERENCES portal_users (tenant_id, id)
);
CREATE INDEX portal_sessions_user ON portal_sessions (tenant_id, portal_user_id);

CREATE TABLE portal_links (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    token_hash     TEXT NOT NULL,
    portal_user_id UUID NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, portal_user_id) REFERENCES portal_users (tenant_id, id)
);

CREATE TABLE help_deflections (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    id             UUID NOT NULL,
    portal_user_id UUID NOT NULL,
    question       TEXT NOT NULL,
    suggested      JSONB NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('open', 'solved', 'submitted')),
    article_id     UUID,
    ticket_id      UUID,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((outcome = 'solved') = (article_id IS NOT NULL)),
    CHECK ((outcome = 'submitted') = (ticket_id IS NOT NULL)),
    FOREIGN KEY (tenant_id, portal_user_id) REFERENCES portal_users (tenant_id, id),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE INDEX help_deflections_created ON help_deflections (tenant_id, created_at);
