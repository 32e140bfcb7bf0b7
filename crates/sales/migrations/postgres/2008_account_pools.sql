-- Pools hold leads or accounts (the customer 公海): one per team and one for the company of
-- each kind. An account waiting in a pool has no owner; its pool says where it waits.
ALTER TABLE pools ADD COLUMN entity TEXT NOT NULL DEFAULT 'leads' CHECK (entity IN ('leads', 'accounts'));
DROP INDEX pools_team;
DROP INDEX pools_company;
CREATE UNIQUE INDEX pools_team ON pools (tenant_id, entity, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX pools_company ON pools (tenant_id, entity) WHERE team_id IS NULL;

-- Events name the record (a lead or an account, as its pool says), not only a lead.
ALTER TABLE pool_events DROP CONSTRAINT pool_events_tenant_id_lead_id_fkey;
ALTER TABLE pool_events RENAME COLUMN lead_id TO record_id;
DROP INDEX pool_events_lead;
CREATE INDEX pool_events_record ON pool_events (tenant_id, record_id, at);

-- An account's place in a pool, since when its holder has it, and its last follow-up (a
-- logged touch); the return rules read the last two. The owner becomes optional, exactly when
-- the account waits in a pool.
ALTER TABLE accounts
    ADD COLUMN pool_id UUID,
    ADD COLUMN held_since TIMESTAMPTZ,
    ADD COLUMN followed_at TIMESTAMPTZ,
    ALTER COLUMN owner_id DROP NOT NULL,
    ADD CONSTRAINT accounts_held CHECK ((owner_id IS NULL) = (pool_id IS NOT NULL)),
    ADD FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id);

-- An account's last follow-up so far: its latest logged touch (a task planned is not one).
-- Accounts never touched keep none, and the rules read their last change instead.
UPDATE accounts SET followed_at = (
    SELECT MAX(ac.occurred_at) FROM activities ac
     WHERE ac.tenant_id = accounts.tenant_id AND ac.account_id = accounts.id AND ac.kind <> 'task')
 WHERE EXISTS (SELECT 1 FROM activities ac
     WHERE ac.tenant_id = accounts.tenant_id AND ac.account_id = accounts.id AND ac.kind <> 'task');

CREATE INDEX accounts_pool ON accounts (tenant_id, pool_id, id) WHERE pool_id IS NOT NULL;
CREATE INDEX accounts_held ON accounts (tenant_id, team_id, followed_at) WHERE owner_id IS NOT NULL AND deleted_at IS NULL;
