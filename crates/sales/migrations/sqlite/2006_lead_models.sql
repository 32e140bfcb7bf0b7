-- The learned part of lead scores (sales::learned): a naive-Bayes frequency model of the
-- tenant's won and lost leads, the company's (team_key '') and each team's (its id), replaced
-- whole at each training.
CREATE TABLE lead_models (
    tenant_id  BLOB NOT NULL REFERENCES tenants (id),
    team_key   TEXT NOT NULL,
    model      TEXT NOT NULL,
    trained_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, team_key)
);
