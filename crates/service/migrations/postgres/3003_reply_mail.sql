-- The Message-ID a ticket's message travelled under (a reply emailed to the customer; later, a
-- customer's mail), so a mail answering it finds its ticket.
ALTER TABLE ticket_messages ADD COLUMN mail_id TEXT;
CREATE UNIQUE INDEX ticket_messages_mail_id ON ticket_messages (tenant_id, mail_id) WHERE mail_id IS NOT NULL;
