-- SLA policies chosen also by how the ticket's asset is covered: under warranty, under a
-- service contract, or neither (empty: any).
ALTER TABLE sla_policies ADD COLUMN coverage TEXT NOT NULL DEFAULT '[]';
