-- The furthest stage a deal has reached in its pipeline (lost stages aside), kept by every
-- stage change, so the funnel and stage-to-stage conversion are one grouped read. Filled
-- here from the stage history (by name: the history keeps what the user saw).
ALTER TABLE opportunities ADD COLUMN reached_stage_id UUID;
UPDATE opportunities SET reached_stage_id = (
    SELECT s.id FROM pipeline_stages s
    WHERE s.tenant_id = opportunities.tenant_id AND s.pipeline_id = opportunities.pipeline_id
      AND s.category <> 'lost'
      AND (s.id = opportunities.stage_id OR s.name IN (
          SELECT h.to_value FROM opportunity_history h
          WHERE h.tenant_id = opportunities.tenant_id AND h.opportunity_id = opportunities.id
            AND h.field = 'stage'))
    ORDER BY s.position DESC LIMIT 1);
CREATE INDEX opportunities_funnel ON opportunities (tenant_id, pipeline_id, created_at);

-- Forecast calls: the number a rep commits to for a period, or a manager's adjustment of a
-- rep's number or the team's, with a note. Append-only: the latest per rep or team is the
-- call; every one is kept with what the forecast showed when it was made, so a quarter's
-- calls can be compared with its outcome.
CREATE TABLE forecast_calls (
    tenant_id UUID NOT NULL REFERENCES tenants(id),
    id        UUID NOT NULL,
    period    TEXT NOT NULL,
    user_id   UUID,
    team_id   UUID,
    amount    BIGINT NOT NULL CHECK (amount >= 0),
    currency  TEXT NOT NULL,
    note      TEXT,
    pipeline  BIGINT NOT NULL,
    best_case BIGINT NOT NULL,
    commit_amount BIGINT NOT NULL,
    weighted  BIGINT NOT NULL,
    won       BIGINT NOT NULL,
    made_by   UUID NOT NULL,
    made_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id),
    FOREIGN KEY (tenant_id, made_by) REFERENCES users (tenant_id, id),
    CHECK ((user_id IS NULL) <> (team_id IS NULL))
);
CREATE INDEX forecast_calls_period ON forecast_calls (tenant_id, period, made_at);
