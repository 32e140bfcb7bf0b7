-- Queues and routing: a queue is a team's share of the tickets (by category, customer grade,
-- priority, channel), worked round robin, by the least loaded agent, or by the best skill
-- match; agents' skills (level 1–10), capacity and availability.
CREATE TABLE ticket_queues (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    id             UUID NOT NULL,
    name           TEXT NOT NULL,
    position       BIGINT NOT NULL,
    active         BOOLEAN NOT NULL,
    team_id        UUID NOT NULL,
    strategy       TEXT NOT NULL CHECK (strategy IN ('round_robin', 'least_loaded', 'skills', 'manual')),
    categories     JSONB NOT NULL DEFAULT '[]',
    grades         JSONB NOT NULL DEFAULT '[]',
    priorities     JSONB NOT NULL DEFAULT '[]',
    channels       JSONB NOT NULL DEFAULT '[]',
    skill          TEXT,
    min_level      BIGINT NOT NULL DEFAULT 1 CHECK (min_level BETWEEN 1 AND 10),
    last_user_id   UUID,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    version        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (strategy <> 'skills' OR skill IS NOT NULL),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);
CREATE UNIQUE INDEX ticket_queues_name ON ticket_queues (tenant_id, name);

-- An agent's service profile: how many open tickets they take (NULL: no limit), whether they
-- take new ones now, and their skills. `id` is the user's (version 0: never saved).
CREATE TABLE agent_profiles (
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    id          UUID NOT NULL,
    capacity    BIGINT CHECK (capacity >= 0),
    available   BOOLEAN NOT NULL,
    skills      JSONB NOT NULL DEFAULT '{}',
    updated_at  TIMESTAMPTZ NOT NULL,
    version     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, id) REFERENCES users (tenant_id, id)
);

ALTER TABLE tickets ADD COLUMN queue_id UUID;
ALTER TABLE tickets ADD CONSTRAINT tickets_queue FOREIGN KEY (tenant_id, queue_id) REFERENCES ticket_queues (tenant_id, id);
CREATE INDEX tickets_queue ON tickets (tenant_id, queue_id, status);
