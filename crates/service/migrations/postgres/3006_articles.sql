-- Knowledge base: articles with the record machinery's shared columns. A translation is an
-- article of its own (one language each) in its original's group; a group has at most one live
-- article per language. Counters (views, votes, uses in replies) are
-- kept on the row and never move its version; each vote is also a row of its own.
CREATE TABLE articles (
    tenant_id     UUID NOT NULL REFERENCES tenants(id),
    id            UUID NOT NULL,
    group_id      UUID NOT NULL,
    locale        TEXT NOT NULL CHECK (locale IN ('zh-CN', 'zh-TW', 'en')),
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    category      TEXT,
    status        TEXT NOT NULL CHECK (status IN ('draft', 'published', 'archived')),
    audience      TEXT NOT NULL CHECK (audience IN ('internal', 'public')),
    published_at  TIMESTAMPTZ,
    views         BIGINT NOT NULL DEFAULT 0,
    helpful       BIGINT NOT NULL DEFAULT 0,
    unhelpful     BIGINT NOT NULL DEFAULT 0,
    used          BIGINT NOT NULL DEFAULT 0,
    owner_id      UUID,
    team_id       UUID,
    search        TEXT NOT NULL,
    grams         TEXT,
    era           BIGINT NOT NULL DEFAULT 0,
    custom        JSONB NOT NULL,
    tags          JSONB NOT NULL DEFAULT '[]',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    created_by    UUID,
    updated_by    UUID,
    version       BIGINT NOT NULL,
    deleted_at    TIMESTAMPTZ,
    name_key TEXT GENERATED ALWAYS AS (split_part(search, '|', 3) || '|' || split_part(search, '|', 2)) STORED,
    PRIMARY KEY (tenant_id, id),
    CHECK (status <> 'published' OR published_at IS NOT NULL),
    FOREIGN KEY (tenant_id, group_id) REFERENCES articles (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX articles_translation ON articles (tenant_id, group_id, locale) WHERE deleted_at IS NULL;
CREATE INDEX articles_updated ON articles (tenant_id, updated_at, id);
CREATE INDEX articles_created ON articles (tenant_id, created_at, id);
CREATE INDEX articles_published ON articles (tenant_id, status, audience, locale);
CREATE INDEX articles_name_key ON articles (tenant_id, name_key, id);

CREATE INDEX articles_grams ON articles USING gin (string_to_array(grams, ' '));
CREATE INDEX articles_era_grams ON articles
    USING gin (string_to_array(era::text || ':' || replace(grams, ' ', ' ' || era::text || ':'), ' '));
ALTER INDEX articles_era_grams ALTER COLUMN 1 SET STATISTICS 0;

-- "Did this help?": every answer kept (an agent's, a help-centre visitor's), with an optional
-- comment saying what was missing.
CREATE TABLE article_votes (
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    id          UUID NOT NULL,
    article_id  UUID NOT NULL,
    helpful     BOOLEAN NOT NULL,
    comment     TEXT,
    channel     TEXT NOT NULL CHECK (channel IN ('agent', 'public', 'portal')),
    user_id     UUID,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX article_votes_article ON article_votes (tenant_id, article_id, at);
