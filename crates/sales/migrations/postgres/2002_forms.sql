-- Public forms: an admin designs a form (fields mapped to lead fields and custom fields,
-- labels per language, consent text, thank-you message or redirect) and embeds it on a web
-- site; visitors post to /public/forms/{key}. `key` is public and unique across tenants (the
-- one cross-tenant lookup besides sign-in by email); `secret` signs the fill-time tokens.
CREATE TABLE forms (
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    id               UUID NOT NULL,
    key              TEXT NOT NULL,
    secret           TEXT NOT NULL,
    name             TEXT NOT NULL,
    fields           JSONB NOT NULL,
    consent          JSONB,
    thanks           JSONB NOT NULL,
    redirect_url     TEXT,
    source_detail    TEXT,
    tags             JSONB NOT NULL DEFAULT '[]',
    owner_id         UUID NOT NULL,
    min_fill_seconds BIGINT NOT NULL CHECK (min_fill_seconds >= 0),
    per_ip_hour      BIGINT NOT NULL CHECK (per_ip_hour > 0),
    per_minute       BIGINT NOT NULL CHECK (per_minute > 0),
    active           BOOLEAN NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    created_by       UUID,
    updated_by       UUID,
    version          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id)
);
CREATE UNIQUE INDEX forms_key ON forms (key);
CREATE UNIQUE INDEX forms_name ON forms (tenant_id, name);

-- Every submission is kept, whatever became of it: what was posted, from where, and the
-- outcome (created, matched, repeated, invalid, spam, rate_limited) with the record it landed
-- on.
CREATE TABLE form_submissions (
    tenant_id  UUID NOT NULL REFERENCES tenants(id),
    id         UUID NOT NULL,
    form_id    UUID NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    ip         TEXT NOT NULL,
    user_agent TEXT,
    referrer   TEXT,
    utm        JSONB NOT NULL,
    payload    JSONB,
    outcome    TEXT NOT NULL CHECK (outcome IN ('created', 'matched', 'repeated', 'invalid', 'spam', 'rate_limited')),
    reason     TEXT,
    entity     TEXT,
    record_id  UUID,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, form_id) REFERENCES forms (tenant_id, id)
);
CREATE INDEX form_submissions_form ON form_submissions (tenant_id, form_id, id);
CREATE INDEX form_submissions_ip ON form_submissions (tenant_id, form_id, ip, at);
