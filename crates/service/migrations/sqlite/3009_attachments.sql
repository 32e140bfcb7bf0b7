-- A ticket's attachments: files (the platform's `files`) uploaded by an agent or the customer
-- on the portal, or carried by the mail that opened or continued it. `message_id` is the
-- message that sent it (none until an agent's upload goes out with a reply or a note);
-- `public` says the customer sees it: what they sent, and what a public reply sent them.
CREATE TABLE ticket_attachments (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    ticket_id      BLOB NOT NULL,
    file_id        BLOB NOT NULL,
    message_id     BLOB,
    public         INTEGER NOT NULL,
    user_id        BLOB,
    portal_user_id BLOB,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, file_id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, file_id) REFERENCES files (tenant_id, id)
);
CREATE INDEX ticket_attachments_message ON ticket_attachments (tenant_id, message_id);
