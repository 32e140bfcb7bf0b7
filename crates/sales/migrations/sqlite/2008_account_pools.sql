-- Pools hold leads or accounts (the customer 公海): one per team and one for the company of
-- each kind. An account waiting in a pool has no owner; its pool says where it waits.
ALTER TABLE pools ADD COLUMN entity TEXT NOT NULL DEFAULT 'leads' CHECK (entity IN ('leads', 'accounts'));
DROP INDEX pools_team;
DROP INDEX pools_company;
CREATE UNIQUE INDEX pools_team ON pools (tenant_id, entity, team_id) WHERE team_id IS NOT NULL;
CREATE UNIQUE INDEX pools_company ON pools (tenant_id, entity) WHERE team_id IS NULL;

-- Events name the record (a lead or an account, as its pool says), not only a lead.
CREATE TABLE pool_events_new (
    tenant_id BLOB NOT NULL REFERENCES tenants (id),
    id        BLOB NOT NULL,
    pool_id   BLOB NOT NULL,
    record_id BLOB NOT NULL,
    user_id   BLOB,
    action    TEXT NOT NULL CHECK (action IN ('claim', 'release', 'return', 'assign')),
    reason    TEXT,
    at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pool_id) REFERENCES pools (tenant_id, id)
);
INSERT INTO pool_events_new (tenant_id, id, pool_id, record_id, user_id, action, reason, at)
    SELECT tenant_id, id, pool_id, lead_id, user_id, action, reason, at FROM pool_events;
DROP TABLE pool_events;
ALTER TABLE pool_events_new RENAME TO pool_events;
CREATE INDEX pool_events_user ON pool_events (tenant_id, user_id, action, at);
CREATE INDEX pool_events_record ON pool_events (tenant_id, record_id, at);

-- An account's place in a pool, since when its holder has it, and its last follow-up (a
-- logged touch); the return rules read the last two.
ALTER TABLE accounts ADD COLUMN pool_id BLOB;
ALTER TABLE accounts ADD COLUMN held_since TEXT;
ALTER TABLE accounts ADD COLUMN followed_at TEXT;

-- The owner becomes optional, exactly when the account waits in a pool. SQLite's documented
-- way to drop a NOT NULL (and add a check every existing row meets) without rebuilding a table
-- of a million rows: edit its definition in place, then reload the schema.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'owner_id    BLOB NOT NULL,',
                     'owner_id    BLOB CHECK ((owner_id IS NULL) = (pool_id IS NOT NULL)),')
 WHERE type = 'table' AND name = 'accounts';
PRAGMA writable_schema = RESET;

-- An account's last follow-up so far: its latest logged touch (a task planned is not one).
-- Accounts never touched keep none, and the rules read their last change instead.
UPDATE accounts SET followed_at = (
    SELECT MAX(ac.occurred_at) FROM activities ac
     WHERE ac.tenant_id = accounts.tenant_id AND ac.account_id = accounts.id AND ac.kind <> 'task')
 WHERE EXISTS (SELECT 1 FROM activities ac
     WHERE ac.tenant_id = accounts.tenant_id AND ac.account_id = accounts.id AND ac.kind <> 'task');

CREATE INDEX accounts_pool ON accounts (tenant_id, pool_id, id) WHERE pool_id IS NOT NULL;
CREATE INDEX accounts_held ON accounts (tenant_id, team_id, followed_at) WHERE owner_id IS NOT NULL AND deleted_at IS NULL;
