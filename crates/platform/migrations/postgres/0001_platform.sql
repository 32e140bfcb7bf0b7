-- Platform: tenants, teams, roles, users, sessions, API tokens, one-time user tokens,
-- audit events, jobs (outbox) and idempotency keys.
-- Invariant (tested): every table but `tenants` has tenant_id NOT NULL leading its primary key
-- and every foreign key, so the schema can be distributed by tenant_id (Citus).

CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    currency    TEXT NOT NULL,
    locale      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL
);

CREATE TABLE teams (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    created_by  UUID,
    updated_by  UUID,
    version     BIGINT NOT NULL,
    deleted_at  TIMESTAMPTZ,
    custom      JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX teams_name ON teams (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE roles (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    builtin     BOOLEAN NOT NULL,
    permissions JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    created_by  UUID,
    updated_by  UUID,
    version     BIGINT NOT NULL,
    deleted_at  TIMESTAMPTZ,
    custom      JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX roles_key ON roles (tenant_id, key);

CREATE TABLE users (
    tenant_id     UUID NOT NULL REFERENCES tenants (id),
    id            UUID NOT NULL,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    password_hash TEXT,
    role_id       UUID NOT NULL,
    team_id       UUID,
    locale        TEXT,
    active        BOOLEAN NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    created_by    UUID,
    updated_by    UUID,
    version       BIGINT NOT NULL,
    deleted_at    TIMESTAMPTZ,
    custom        JSONB NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, email);
-- Sign-in is the one lookup that starts without a tenant: by email.
CREATE INDEX users_login ON users (email);
CREATE INDEX users_name ON users (tenant_id, name, id);

CREATE TABLE sessions (
    tenant_id    UUID NOT NULL,
    token_hash   TEXT NOT NULL,
    user_id      UUID NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE api_tokens (
    tenant_id    UUID NOT NULL,
    id           UUID NOT NULL,
    user_id      UUID NOT NULL,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   UUID,
    last_used_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (tenant_id, token_hash);

CREATE TABLE user_tokens (
    tenant_id    UUID NOT NULL,
    token_hash   TEXT NOT NULL,
    user_id      UUID NOT NULL,
    purpose      TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

CREATE TABLE audit_events (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    actor_id     UUID,
    actor_kind   TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity       TEXT NOT NULL,
    entity_id    UUID,
    before       JSONB,
    after        JSONB,
    request_id   TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_entity ON audit_events (tenant_id, entity, entity_id);
CREATE INDEX audit_events_actor ON audit_events (tenant_id, actor_id, id);

CREATE TABLE jobs (
    tenant_id    UUID NOT NULL REFERENCES tenants (id),
    id           UUID NOT NULL,
    kind         TEXT NOT NULL,
    payload      JSONB NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    run_at       TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX jobs_due ON jobs (status, run_at);

CREATE TABLE idempotency_keys (
    tenant_id     UUID NOT NULL REFERENCES tenants (id),
    user_id       UUID NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   BIGINT NOT NULL,
    response_body TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id, key)
);
