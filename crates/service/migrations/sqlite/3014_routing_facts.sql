-- Queues matched also by the customer's region (a province or city the contact's or account's
-- address starts with), the asset's product (its SKU or product category) and the ticket's
-- language (zh when it has Chinese characters, else en). A team whose queue covers regions is a
-- service station: its engineers go first for visits to tickets it took.
ALTER TABLE ticket_queues ADD COLUMN regions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE ticket_queues ADD COLUMN products TEXT NOT NULL DEFAULT '[]';
ALTER TABLE ticket_queues ADD COLUMN languages TEXT NOT NULL DEFAULT '[]';
