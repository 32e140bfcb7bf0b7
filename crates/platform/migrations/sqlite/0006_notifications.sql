-- Notifications: what a user is told (a record handed to them, a deadline near, a record back
-- in the pool…), listed under the bell until read; `params` fill the kind's message in the
-- reader's language. Preferences say per user and kind whether an email goes out too.
CREATE TABLE notifications (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    id         BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    kind       TEXT NOT NULL,
    params     TEXT NOT NULL,
    link       TEXT,
    entity     TEXT,
    entity_id  BLOB,
    actor_id   BLOB,
    created_at TEXT NOT NULL,
    read_at    TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX notifications_inbox ON notifications (tenant_id, user_id, id);
CREATE INDEX notifications_unread ON notifications (tenant_id, user_id) WHERE read_at IS NULL;

CREATE TABLE notification_prefs (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    user_id   BLOB NOT NULL,
    kind      TEXT NOT NULL,
    email     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, kind),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
