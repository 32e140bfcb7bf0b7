-- A ticket's attachments: files (the platform's `files`) uploaded by an agent or the customer
-- on the portal, or carried by the mail that opened or continued it. `message_id` is the
-- message that sent it (none until an agent's upload goes out with a reply or a note);
-- `public` says the customer sees it: what they sent, and what a public reply sent them.
CREATE TABLE ticket_attachments (
    tenant_id      UUID NOT NULL REFERENCES tenants (id),
    ticket_id      UUID NOT NULL,
    file_id        UUID NOT NULL,
    message_id     UUID,
    public         BOOLEAN NOT NULL,
    user_id        UUID,
    portal_user_id UUID,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, file_id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, file_id) REFERENCES files (tenant_id, id)
);
CREATE INDEX ticket_attachments_message ON ticket_attachments (tenant_id, message_id);
