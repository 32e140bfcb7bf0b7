-- The intake matches a person by phone, email, or name at the same company. `name = $n` is one
-- arm of that OR and needs its own index; and the phone and email indexes only hold rows that
-- have one, so a column mostly empty (leads without email) does not look useless to the
-- planner — it once chose to read every lead on each arrival (seen at 100,000 leads).
CREATE INDEX leads_name ON leads (tenant_id, name);
DROP INDEX leads_phone;
CREATE INDEX leads_phone ON leads (tenant_id, phone_e164) WHERE phone_e164 IS NOT NULL;
DROP INDEX leads_email;
CREATE INDEX leads_email ON leads (tenant_id, email) WHERE email IS NOT NULL;
DROP INDEX contacts_phone;
CREATE INDEX contacts_phone ON contacts (tenant_id, phone_e164) WHERE phone_e164 IS NOT NULL;
DROP INDEX contacts_email;
CREATE INDEX contacts_email ON contacts (tenant_id, email) WHERE email IS NOT NULL;
