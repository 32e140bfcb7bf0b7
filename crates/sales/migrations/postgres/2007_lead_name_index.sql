-- The intake matches a person by phone, email, or name at the same company: `name = $n` is one
-- arm of that OR and needs its own index (without it every arrival read every lead, seen at
-- 100,000 leads). PostgreSQL's statistics count empty values apart, so the phone and email
-- indexes stay whole here (SQLite's are made partial).
CREATE INDEX leads_name ON leads (tenant_id, name);
