-- Colleagues following a ticket: told when the customer writes, a reply goes out or its status
-- moves.
CREATE TABLE ticket_followers (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    ticket_id  BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, user_id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
