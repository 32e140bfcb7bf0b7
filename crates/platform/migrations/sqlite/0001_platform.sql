-- Platform: tenants, teams, roles, users, sessions, API tokens, one-time user tokens,
-- audit events, jobs (outbox) and idempotency keys.
-- Invariant (tested): every table but `tenants` has tenant_id NOT NULL leading its primary key
-- and every foreign key, so the schema can be distributed by tenant_id (Citus).
-- SQLite types: ids are 16-byte BLOBs, instants fixed-width UTC ISO-8601 TEXT, JSON TEXT.

CREATE TABLE tenants (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    currency    TEXT NOT NULL,
    locale      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL
);

CREATE TABLE teams (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    created_by  BLOB,
    updated_by  BLOB,
    version     INTEGER NOT NULL,
    deleted_at  TEXT,
    custom      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX teams_name ON teams (tenant_id, name) WHERE deleted_at IS NULL;

CREATE TABLE roles (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    builtin     INTEGER NOT NULL,
    permissions TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    created_by  BLOB,
    updated_by  BLOB,
    version     INTEGER NOT NULL,
    deleted_at  TEXT,
    custom      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX roles_key ON roles (tenant_id, key);

CREATE TABLE users (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    id            BLOB NOT NULL,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    password_hash TEXT,
    role_id       BLOB NOT NULL,
    team_id       BLOB,
    locale        TEXT,
    active        INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    created_by    BLOB,
    updated_by    BLOB,
    version       INTEGER NOT NULL,
    deleted_at    TEXT,
    custom        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, email);
-- Sign-in is the one lookup that starts without a tenant: by email.
CREATE INDEX users_login ON users (email);
CREATE INDEX users_name ON users (tenant_id, name, id);

CREATE TABLE sessions (
    tenant_id    BLOB NOT NULL,
    token_hash   TEXT NOT NULL,
    user_id      BLOB NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);

CREATE TABLE api_tokens (
    tenant_id    BLOB NOT NULL,
    id           BLOB NOT NULL,
    user_id      BLOB NOT NULL,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   BLOB,
    last_used_at TEXT,
    expires_at   TEXT,
    revoked_at   TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (tenant_id, token_hash);

CREATE TABLE user_tokens (
    tenant_id    BLOB NOT NULL,
    token_hash   TEXT NOT NULL,
    user_id      BLOB NOT NULL,
    purpose      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

CREATE TABLE audit_events (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    at           TEXT NOT NULL,
    actor_id     BLOB,
    actor_kind   TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity       TEXT NOT NULL,
    entity_id    BLOB,
    before       TEXT,
    after        TEXT,
    request_id   TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_entity ON audit_events (tenant_id, entity, entity_id);
CREATE INDEX audit_events_actor ON audit_events (tenant_id, actor_id, id);

CREATE TABLE jobs (
    tenant_id    BLOB NOT NULL REFERENCES tenants (id),
    id           BLOB NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_at       TEXT NOT NULL,
    locked_until TEXT,
    last_error   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX jobs_due ON jobs (status, run_at);

CREATE TABLE idempotency_keys (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    user_id       BLOB NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, key)
);
