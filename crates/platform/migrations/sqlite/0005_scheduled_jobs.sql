-- The scheduler: a job planned for a due time carries a key naming what it is for
-- (`lead_sla:<lead>:<deadline>`); one job per (tenant, kind, key), so planning the same due
-- time twice — from two app nodes, or again after a crash — queues it once.
ALTER TABLE jobs ADD COLUMN dedupe_key TEXT;
CREATE UNIQUE INDEX jobs_dedupe ON jobs (tenant_id, kind, dedupe_key) WHERE dedupe_key IS NOT NULL;
