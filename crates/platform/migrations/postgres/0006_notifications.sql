-- Notifications: what a user is told (a record handed to them, a deadline near, a record back
-- in the pool…), listed under the bell until read; `params` fill the kind's message in the
-- reader's language. Preferences say per user and kind whether an email goes out too.
CREATE TABLE notifications (
    tenant_id  UUID NOT NULL REFERENCES tenants (id),
    id         UUID NOT NULL,
    user_id    UUID NOT NULL,
    kind       TEXT NOT NULL,
    params     JSONB NOT NULL,
    link       TEXT,
    entity     TEXT,
    entity_id  UUID,
    actor_id   UUID,
    created_at TIMESTAMPTZ NOT NULL,
    read_at    TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX notifications_inbox ON notifications (tenant_id, user_id, id);
CREATE INDEX notifications_unread ON notifications (tenant_id, user_id) WHERE read_at IS NULL;

CREATE TABLE notification_prefs (
    tenant_id UUID NOT NULL REFERENCES tenants (id),
    user_id   UUID NOT NULL,
    kind      TEXT NOT NULL,
    email     BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, user_id, kind),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
