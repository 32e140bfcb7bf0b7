-- What each user opened last: the home page's "recently viewed" (any module's records). The
-- label is the record's name when it was opened.
CREATE TABLE recent_views (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    user_id    BLOB NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  BLOB NOT NULL,
    label      TEXT NOT NULL,
    viewed_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, entity, entity_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX recent_views_newest ON recent_views (tenant_id, user_id, viewed_at);
