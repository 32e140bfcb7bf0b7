-- The board's counts and sums read a pipeline's live deals stage by stage: this index holds
-- everything that query reads (the scope's owner and team too), so it never visits the table.
CREATE INDEX opportunities_sums ON opportunities
    (tenant_id, pipeline_id, stage_id, owner_id, team_id, amount, probability)
    WHERE deleted_at IS NULL;
