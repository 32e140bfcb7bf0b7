-- Field service: an on-site visit by an engineer (of the right skill, never double-booked)
-- or a follow-up visit (回访) — scheduled by hand, or by the SLA policy after a ticket is
-- resolved (`follow_up_days`). Done, it leaves its report on the customer's timeline (an
-- activity of kind `visit`) and on the ticket's log.
CREATE TABLE service_visits (
    tenant_id   UUID NOT NULL REFERENCES tenants (id),
    id          UUID NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('onsite', 'follow_up')),
    reason      TEXT NOT NULL CHECK (reason IN ('manual', 'resolved')),
    ticket_id   UUID,
    account_id  UUID,
    contact_id  UUID,
    engineer_id UUID,
    team_id     UUID,
    skill       TEXT,
    starts_at   TIMESTAMPTZ NOT NULL,
    minutes     BIGINT NOT NULL CHECK (minutes > 0 AND minutes <= 1440),
    address     TEXT,
    status      TEXT NOT NULL CHECK (status IN ('scheduled', 'done', 'cancelled')),
    report      TEXT,
    outcome     TEXT CHECK (outcome IN ('solved', 'unsolved', 'satisfied', 'unsatisfied', 'unreachable')),
    activity_id UUID,
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  UUID,
    updated_at  TIMESTAMPTZ NOT NULL,
    done_at     TIMESTAMPTZ,
    version     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id),
    FOREIGN KEY (tenant_id, engineer_id) REFERENCES users (tenant_id, id)
);
CREATE INDEX service_visits_engineer ON service_visits (tenant_id, engineer_id, starts_at);
CREATE INDEX service_visits_ticket ON service_visits (tenant_id, ticket_id);
CREATE INDEX service_visits_starts ON service_visits (tenant_id, starts_at, id);
-- One automatic follow-up per ticket.
CREATE UNIQUE INDEX service_visits_follow_up ON service_visits (tenant_id, ticket_id) WHERE reason = 'resolved';

-- How many days after a ticket is resolved its follow-up visit is due (none: no follow-up).
ALTER TABLE sla_policies ADD COLUMN follow_up_days BIGINT CHECK (follow_up_days BETWEEN 0 AND 365);

-- A ticket's log also records its visits (booked, finished, cancelled).
ALTER TABLE ticket_events DROP CONSTRAINT ticket_events_kind_check;
ALTER TABLE ticket_events ADD CONSTRAINT ticket_events_kind_check CHECK (kind IN ('created', 'status', 'priority', 'category', 'reply', 'customer_reply', 'assigned', 'merged', 'sla', 'visit'));
