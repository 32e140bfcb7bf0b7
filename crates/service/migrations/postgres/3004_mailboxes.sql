-- Support mailboxes fetched over IMAP. The password is write-only through the API. A fetcher
-- holds a short lease (renewed with every stored batch) so two nodes never fetch one mailbox.
CREATE TABLE mailboxes (
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    id               UUID NOT NULL,
    name             TEXT NOT NULL,
    address          TEXT NOT NULL,
    host             TEXT NOT NULL,
    port             BIGINT NOT NULL CHECK (port BETWEEN 1 AND 65535),
    security         TEXT NOT NULL CHECK (security IN ('tls', 'starttls', 'plain')),
    ca_pem           TEXT,
    username         TEXT NOT NULL,
    password         TEXT NOT NULL,
    folder           TEXT NOT NULL,
    sent_folder      TEXT,
    poll_seconds     BIGINT NOT NULL CHECK (poll_seconds BETWEEN 15 AND 86400),
    enabled          BOOLEAN NOT NULL,
    category         TEXT,
    -- Who owns the contacts its mail makes (default: the tenant's first admin).
    owner_id         UUID,
    next_fetch_at    TIMESTAMPTZ NOT NULL,
    lease_token      UUID,
    lease_until      TIMESTAMPTZ,
    last_success_at  TIMESTAMPTZ,
    last_error       TEXT,
    last_error_at    TIMESTAMPTZ,
    backlog          BIGINT NOT NULL DEFAULT 0,
    fetched_total    BIGINT NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    version          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX mailboxes_address ON mailboxes (tenant_id, address);
CREATE INDEX mailboxes_due ON mailboxes (next_fetch_at) WHERE enabled;

-- Where the fetch stands in each folder: the UIDVALIDITY it was read under, the last UID
-- stored, and that message's internal date (to re-read by date when the server renumbers).
CREATE TABLE mailbox_cursors (
    tenant_id     UUID NOT NULL,
    mailbox_id    UUID NOT NULL,
    folder        TEXT NOT NULL,
    uidvalidity   BIGINT NOT NULL,
    last_uid      BIGINT NOT NULL,
    last_date     TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, mailbox_id, folder),
    FOREIGN KEY (tenant_id, mailbox_id) REFERENCES mailboxes (tenant_id, id) ON DELETE CASCADE
);

-- Every fetched message, kept whole before anything is made of it: `pending` until turned into
-- a ticket (`created`) or a message on one (`appended`); `duplicate` when its Message-ID is
-- already on a ticket; `ignored` (auto-replies, loops: never answered); `dead` when it could
-- not be used, with the reason, to be re-run.
CREATE TABLE inbound_mail (
    tenant_id     UUID NOT NULL REFERENCES tenants(id),
    id            UUID NOT NULL,
    mailbox_id    UUID NOT NULL,
    folder        TEXT NOT NULL,
    uidvalidity   BIGINT NOT NULL,
    uid           BIGINT NOT NULL,
    dedupe_key    TEXT NOT NULL,
    internal_date TIMESTAMPTZ,
    size          BIGINT NOT NULL,
    truncated     BOOLEAN NOT NULL,
    raw           BYTEA NOT NULL,
    sender        TEXT,
    subject       TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'created', 'appended', 'duplicate', 'ignored', 'dead')),
    reason        TEXT,
    ticket_id     UUID,
    fetched_at    TIMESTAMPTZ NOT NULL,
    processed_at  TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, mailbox_id) REFERENCES mailboxes (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);
CREATE UNIQUE INDEX inbound_mail_uid ON inbound_mail (tenant_id, mailbox_id, folder, uidvalidity, uid);
CREATE INDEX inbound_mail_dedupe ON inbound_mail (tenant_id, mailbox_id, dedupe_key);
CREATE INDEX inbound_mail_status ON inbound_mail (tenant_id, mailbox_id, status, id);
CREATE INDEX inbound_mail_pending ON inbound_mail (id) WHERE status = 'pending';
CREATE INDEX inbound_mail_sender ON inbound_mail (tenant_id, sender, fetched_at);

-- The mail a ticket began with (threading finds it), and the mailbox it came in by (replies
-- go out with its address to answer to, and a copy into its Sent folder).
ALTER TABLE tickets ADD COLUMN mail_id TEXT;
ALTER TABLE tickets ADD COLUMN mailbox_id UUID;
CREATE UNIQUE INDEX tickets_mail_id ON tickets (tenant_id, mail_id) WHERE mail_id IS NOT NULL;
