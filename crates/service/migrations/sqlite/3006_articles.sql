-- Knowledge base: articles with the record machinery's shared columns. A translation is an
-- article of its own (one language each) in its original's group; a group has at most one live
-- article per language. Counters (views, votes, uses in replies) are
-- kept on the row and never move its version; each vote is also a row of its own.
CREATE TABLE articles (
    tenant_id     BLOB NOT NULL REFERENCES tenants (id),
    id            BLOB NOT NULL,
    group_id      BLOB NOT NULL,
    locale        TEXT NOT NULL CHECK (locale IN ('zh-CN', 'zh-TW', 'en')),
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    category      TEXT,
    status        TEXT NOT NULL CHECK (status IN ('draft', 'published', 'archived')),
    audience      TEXT NOT NULL CHECK (audience IN ('internal', 'public')),
    published_at  TEXT,
    views         INTEGER NOT NULL DEFAULT 0,
    helpful       INTEGER NOT NULL DEFAULT 0,
    unhelpful     INTEGER NOT NULL DEFAULT 0,
    used          INTEGER NOT NULL DEFAULT 0,
    owner_id      BLOB,
    team_id       BLOB,
    search        TEXT NOT NULL,
    grams         TEXT,
    era           INTEGER NOT NULL DEFAULT 0,
    custom        TEXT NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    created_by    BLOB,
    updated_by    BLOB,
    version       INTEGER NOT NULL,
    deleted_at    TEXT,
    name_key TEXT GENERATED ALWAYS AS (substr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), 1, instr(substr(substr(search, 2), instr(substr(search, 2), '|') + 1), '|') - 1) || '|' || substr(substr(search, 2), 1, instr(substr(search, 2), '|') - 1)) VIRTUAL,
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

CREATE VIRTUAL TABLE articles_fts USING fts5(grams, content='articles', content_rowid='rowid');
CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;
CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
END;
CREATE TRIGGER articles_fts_update AFTER UPDATE OF grams ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, grams) VALUES ('delete', old.rowid, old.grams);
    INSERT INTO articles_fts (rowid, grams) VALUES (new.rowid, new.grams);
END;

-- "Did this help?": every answer kept (an agent's, a help-centre visitor's), with an optional
-- comment saying what was missing.
CREATE TABLE article_votes (
    tenant_id   BLOB NOT NULL REFERENCES tenants (id),
    id          BLOB NOT NULL,
    article_id  BLOB NOT NULL,
    helpful     INTEGER NOT NULL,
    comment     TEXT,
    channel     TEXT NOT NULL CHECK (channel IN ('agent', 'public', 'portal')),
    user_id     BLOB,
    at          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, article_id) REFERENCES articles (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX article_votes_article ON article_votes (tenant_id, article_id, at);
